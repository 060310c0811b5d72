// libFuzzer harness: the JWT verifier (fanout::TokenVerifier) and the pieces under it, on arbitrary
// bytes. Tokens come from clients before anything is trusted, so every input must be refused or
// accepted without a crash, a leak or undefined behaviour.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude fuzz/jwt_fuzzer.cpp \
//       src/auth/*.cpp -lsimdjson -lfmt -lcrypto -o jwt_fuzzer && ./jwt_fuzzer fuzz/corpus/jwt_fuzzer
//
// Keys: an HS256 secret (so forged-looking tokens reach the claims parser when the fuzzer finds the
// signature, which it does for the seed corpus's tokens) and one key per public-key algorithm, made
// at start-up. Inputs starting with '{' also go through the key-file parser.
#include <fanout/detail/jwt.hpp>
#include <fanout/token_verifier.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

std::string public_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, k);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(b);
  EVP_PKEY_free(k);
  return s;
}

fanout::TokenVerifier& verifier() {
  static auto v = [] {
    // No exp needed: the seeds' signatures then stay valid whenever the fuzzer runs.
    auto p = std::make_unique<fanout::TokenVerifier>(fanout::TokenVerifier::Options{.require_exp = false});
    p->set_keys({{.kid = "hs", .alg = "HS256", .secret = "fuzzing-secret-0123456789abcdef!"},
                 {.kid = "hs512", .alg = "HS512", .secret = std::string(64, 'k')},
                 {.kid = "rs",
                  .alg = "RS256",
                  .pem = public_pem(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}))},
                 {.kid = "es", .alg = "ES256", .pem = public_pem(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"))}});
    return p;
  }();
  return *v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = verifier().verify(in);
  if (r && r.identity.claims.empty()) __builtin_trap();  // an accepted token always has its claims
  if (auto decoded = fanout::detail::base64url_decode(in))
    if (fanout::detail::base64url_decode(fanout::detail::base64url_encode(*decoded)) != decoded) __builtin_trap();
  (void)fanout::detail::ecdsa_raw_to_der(in, in.size() / 2);
  if (!in.empty() && in.front() == '{') {
    try {
      (void)fanout::TokenVerifier::parse_key_file(in, "/nonexistent");
    } catch (const std::invalid_argument&) {
    }
  }
  return 0;
}

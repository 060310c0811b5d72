// TokenVerifier: every algorithm with keys made here (OpenSSL), and each way a token is refused.
#include <doctest/doctest.h>

#include <fanout/detail/jwt.hpp>
#include <fanout/token_verifier.hpp>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

using fanout::TokenError;
using fanout::TokenVerifier;
using fanout::detail::base64url_encode;

namespace {

const std::string k_secret(32, 's');
const std::string k_secret64(64, 'S');
using Clock = std::chrono::system_clock;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
}

struct Pkey {
  EVP_PKEY* k = nullptr;
  explicit Pkey(EVP_PKEY* p) : k(p) { REQUIRE(k); }
  ~Pkey() { EVP_PKEY_free(k); }
  std::string public_pem() const {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
  }
};

const Pkey& rsa_key() {
  static Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  return k;
}
const Pkey& ec_key() {
  static Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return k;
}

std::string sign_with(std::string_view alg, const std::string& input) {
  if (alg.starts_with("HS")) {
    const EVP_MD* md = alg == "HS256" ? EVP_sha256() : alg == "HS384" ? EVP_sha384() : EVP_sha512();
    const std::string& secret = alg == "HS256" ? k_secret : k_secret64;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(md, secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  EVP_PKEY* key = alg == "RS256" ? rsa_key().k : ec_key().k;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1);
  std::size_t n = 0;
  EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(n, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  sig.resize(n);
  EVP_MD_CTX_free(ctx);
  if (alg == "RS256") return sig;
  // JWS wants r||s, not DER.
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(es, &r, &s);
  unsigned char raw[64];
  BN_bn2binpad(r, raw, 32);
  BN_bn2binpad(s, raw + 32, 32);
  ECDSA_SIG_free(es);
  return std::string(reinterpret_cast<char*>(raw), 64);
}

std::string make_token(const std::string& header, const std::string& claims, std::string_view sign_alg) {
  const auto input = base64url_encode(header) + "." + base64url_encode(claims);
  return input + "." + base64url_encode(sign_with(sign_alg, input));
}
std::string token(std::string_view alg, std::string_view kid, const std::string& claims) {
  return make_token(fmt::format(R"({{"alg":"{}","typ":"JWT","kid":"{}"}})", alg, kid), claims, alg);
}
std::string claims(std::int64_t exp_in = 600, const std::string& more = {}) {
  return fmt::format(R"({{"sub":"alice","exp":{}{}}})", now_s() + exp_in, more);
}

std::unique_ptr<TokenVerifier> verifier(TokenVerifier::Options o = {}) {
  auto v = std::make_unique<TokenVerifier>(std::move(o));
  v->set_keys({{.kid = "hs", .alg = "HS256", .secret = k_secret},
               {.kid = "hs384", .alg = "HS384", .secret = k_secret64},
               {.kid = "hs512", .alg = "HS512", .secret = k_secret64},
               {.kid = "rs", .alg = "RS256", .pem = rsa_key().public_pem()},
               {.kid = "es", .alg = "ES256", .pem = ec_key().public_pem()}});
  return v;
}

}  // namespace

TEST_CASE("each algorithm verifies its own tokens and yields the claims") {
  auto v = verifier();
  for (auto [alg, kid] :
       {std::pair{"HS256", "hs"}, {"HS384", "hs384"}, {"HS512", "hs512"}, {"RS256", "rs"}, {"ES256", "es"}}) {
    CAPTURE(alg);
    auto r = v->verify(token(alg, kid, claims(600, R"(,"topics":["a.*","b"],"role":"admin")")));
    REQUIRE(r);
    CHECK(r.identity.user == "alice");
    CHECK(r.identity.kid == kid);
    CHECK(r.identity.topics == std::vector<std::string>{"a.*", "b"});
    CHECK(r.identity.expires.has_value());
    CHECK(r.identity.claims.find(R"("role":"admin")") != std::string::npos);
  }
}

TEST_CASE("a flipped signature bit, a changed payload or a truncated signature is a bad signature") {
  auto v = verifier();
  for (auto [alg, kid] : {std::pair{"HS256", "hs"}, {"RS256", "rs"}, {"ES256", "es"}}) {
    CAPTURE(alg);
    const auto t = token(alg, kid, claims());
    const auto dot = t.rfind('.');
    auto sig = *fanout::detail::base64url_decode(t.substr(dot + 1));
    sig[5] ^= 1;
    CHECK(v->verify(t.substr(0, dot + 1) + base64url_encode(sig)).error == TokenError::bad_signature);
    CHECK(v->verify(t.substr(0, dot + 1) + base64url_encode(sig.substr(0, sig.size() - 1))).error ==
          TokenError::bad_signature);
    // Same header and signature, another payload.
    const auto other = token(alg, kid, R"({"sub":"mallory","exp":9999999999})");
    const auto a = t.find('.'), b = other.find('.');
    const auto forged = t.substr(0, a) + other.substr(b, other.rfind('.') - b) + t.substr(dot);
    CHECK(v->verify(forged).error == TokenError::bad_signature);
  }
}

TEST_CASE("exp and nbf with leeway") {
  auto v = verifier({.leeway = std::chrono::seconds(5)});
  CHECK(v->verify(token("HS256", "hs", claims(-60))).error == TokenError::expired);
  CHECK(v->verify(token("HS256", "hs", claims(-2))));  // inside the leeway
  CHECK(v->verify(token("HS256", "hs", claims(600, fmt::format(R"(,"nbf":{})", now_s() + 60)))).error ==
        TokenError::not_yet_valid);
  CHECK(v->verify(token("HS256", "hs", claims(600, fmt::format(R"(,"nbf":{})", now_s() + 2)))));
  CHECK(v->verify(token("HS256", "hs", R"({"sub":"alice"})")).error == TokenError::missing_exp);
  CHECK(verifier({.require_exp = false})->verify(token("HS256", "hs", R"({"sub":"alice"})")));
  CHECK(v->verify(token("HS256", "hs", R"({"sub":"alice","exp":"soon"})")).error == TokenError::bad_claims);
  // A fixed clock: the same token is valid before exp and refused after.
  const auto t = token("HS256", "hs", R"({"sub":"a","exp":1000000})");
  CHECK(v->verify(t, Clock::time_point(std::chrono::seconds(999000))));
  CHECK(v->verify(t, Clock::time_point(std::chrono::seconds(1000010))).error == TokenError::expired);
}

TEST_CASE("kid selects the key: unknown kid, no kid, and alg must match the key") {
  auto v = verifier();
  CHECK(v->verify(token("HS256", "nope", claims())).error == TokenError::unknown_kid);
  // Without kid only a one-key set can tell which key is meant.
  const auto no_kid = make_token(R"({"alg":"HS256"})", claims(), "HS256");
  CHECK(v->verify(no_kid).error == TokenError::unknown_kid);
  TokenVerifier one({});
  one.set_keys({{.kid = "only", .alg = "HS256", .secret = k_secret}});
  CHECK(one.verify(no_kid));
  // HS512 signed, presented as for the HS256 key.
  CHECK(v->verify(make_token(R"({"alg":"HS512","kid":"hs"})", claims(), "HS512")).error == TokenError::alg_mismatch);
}

TEST_CASE("alg none and HS/RS confusion are refused before any verification") {
  auto v = verifier();
  const auto none = base64url_encode(R"({"alg":"none","kid":"hs"})") + "." + base64url_encode(claims()) + ".";
  CHECK(v->verify(none).error == TokenError::unsupported_alg);
  CHECK(v->verify(base64url_encode(R"({"alg":"None","kid":"rs"})") + "." + base64url_encode(claims()) + ".").error ==
        TokenError::unsupported_alg);
  CHECK(v->verify(make_token(R"({"kid":"hs"})", claims(), "HS256")).error == TokenError::unsupported_alg);
  // The classic attack: HMAC over the token with the RSA public key's PEM as the secret, claiming HS256
  // for the RSA key's kid.
  const auto pem = rsa_key().public_pem();
  const auto input = base64url_encode(R"({"alg":"HS256","kid":"rs"})") + "." + base64url_encode(claims());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), pem.data(), static_cast<int>(pem.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &len);
  CHECK(v->verify(input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len))).error ==
        TokenError::alg_mismatch);
  // An ES256 signature presented as RS256 for the EC key, and the reverse.
  CHECK(v->verify(make_token(R"({"alg":"RS256","kid":"es"})", claims(), "RS256")).error == TokenError::alg_mismatch);
  CHECK(v->verify(make_token(R"({"alg":"ES256","kid":"rs"})", claims(), "ES256")).error == TokenError::alg_mismatch);
}

TEST_CASE("malformed tokens, crit headers and oversized tokens") {
  auto v = verifier({.max_token_bytes = 2048});
  CHECK(v->verify("").error == TokenError::malformed);
  CHECK(v->verify("a.b").error == TokenError::malformed);
  CHECK(v->verify("!!.bb.cc").error == TokenError::malformed);
  CHECK(v->verify(base64url_encode("[1]") + ".e30.").error == TokenError::malformed);
  CHECK(v->verify(make_token(R"({"alg":"HS256","kid":"hs","crit":["x"]})", claims(), "HS256")).error ==
        TokenError::malformed);
  CHECK(v->verify(make_token(R"({"alg":"HS256","kid":"hs"})", "[]", "HS256")).error == TokenError::malformed);
  CHECK(v->verify(std::string(3000, 'a')).error == TokenError::too_large);
  CHECK(v->verify(token("HS256", "hs", claims(600, R"(,"topics":"a")"))).error == TokenError::bad_claims);
  CHECK(v->verify(token("HS256", "hs", R"({"sub":5,"exp":9999999999})")).error == TokenError::bad_claims);
}

TEST_CASE("issuer and audience, and the subscribe token's topic or channel claim") {
  auto v = verifier({.issuer = "https://id.example", .audience = "fanout"});
  CHECK(v->verify(token("HS256", "hs", claims(600, R"(,"iss":"https://id.example","aud":"fanout")"))));
  CHECK(v->verify(token("HS256", "hs", claims(600, R"(,"iss":"https://id.example","aud":["x","fanout"])"))));
  CHECK(v->verify(token("HS256", "hs", claims(600, R"(,"iss":"other","aud":"fanout")"))).error ==
        TokenError::wrong_issuer);
  CHECK(v->verify(token("HS256", "hs", claims(600, R"(,"aud":"fanout")"))).error == TokenError::wrong_issuer);
  CHECK(v->verify(token("HS256", "hs", claims(600, R"(,"iss":"https://id.example","aud":"x")"))).error ==
        TokenError::wrong_audience);
  auto plain = verifier();
  CHECK(plain->verify(token("HS256", "hs", claims(600, R"(,"topic":"vip.1")"))).identity.topic == "vip.1");
  CHECK(plain->verify(token("HS256", "hs", claims(600, R"(,"channel":"vip.2")"))).identity.topic == "vip.2");
}

TEST_CASE("keys: the file format, weak keys refused, and a reload that fails keeps the old keys") {
  CHECK_THROWS_AS(TokenVerifier({}).set_keys({{.kid = "a", .alg = "HS256", .secret = "short"}}), std::invalid_argument);
  CHECK_THROWS_AS(TokenVerifier({}).set_keys({{.kid = "a", .alg = "none", .secret = k_secret}}), std::invalid_argument);
  CHECK_THROWS_AS(TokenVerifier({}).set_keys({{.kid = "a", .alg = "RS256", .pem = ec_key().public_pem()}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(TokenVerifier({}).set_keys({{.kid = "a", .alg = "ES256", .pem = rsa_key().public_pem()}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(TokenVerifier({}).set_keys({{.kid = "a", .alg = "RS256", .secret = k_secret}}),
                  std::invalid_argument);

  const std::string dir = "/tmp";
  const std::string path = fmt::format("{}/fanout-keys-{}.json", dir, ::getpid());
  const std::string pem_path = fmt::format("{}/fanout-ec-{}.pem", dir, ::getpid());
  std::ofstream(pem_path) << ec_key().public_pem();
  auto write = [&](const std::string& text) { std::ofstream(path, std::ios::trunc) << text; };
  write(fmt::format(R"({{"keys":[{{"kid":"hs","alg":"HS256","secret":"{}"}},
                       {{"kid":"es","alg":"ES256","pem_file":"{}"}}]}})",
                    k_secret, pem_path.substr(dir.size() + 1)));
  TokenVerifier v({.key_file = path});
  CHECK(v.kids() == std::vector<std::string>{"es", "hs"});
  CHECK(v.verify(token("ES256", "es", claims())));
  CHECK(v.verify(token("HS256", "hs", claims())));

  write(R"({"keys":[{"kid":"hs","alg":"HS256","secret":"too short"}]})");
  auto bad = v.reload();
  CHECK_FALSE(bad.ok);
  CHECK(bad.error.find("at least 32 bytes") != std::string::npos);
  CHECK(v.verify(token("ES256", "es", claims())));  // the old keys still work

  write(fmt::format(R"({{"keys":[{{"kid":"hs","alg":"HS256","secret_base64url":"{}"}},
                       {{"kid":"hs512","alg":"HS512","secret":"{}"}}]}})",
                    base64url_encode(std::string(32, 'x')), k_secret64));
  auto good = v.reload();
  REQUIRE(good.ok);
  CHECK(good.added == std::vector<std::string>{"hs512"});
  CHECK(good.removed == std::vector<std::string>{"es"});
  CHECK(good.changed == std::vector<std::string>{"hs"});
  CHECK(v.verify(token("ES256", "es", claims())).error == TokenError::unknown_kid);
  CHECK(v.verify(token("HS512", "hs512", claims())));
  CHECK(v.verify(token("HS256", "hs", claims())).error == TokenError::bad_signature);  // the secret changed

  write(R"({"keys":[{"kid":"x","alg":"HS256","secret":"0123456789abcdef0123456789abcdef","color":"red"}]})");
  CHECK(v.reload().error.find("unknown field") != std::string::npos);
  write("not json");
  CHECK_FALSE(v.reload().ok);
  CHECK_THROWS_AS(TokenVerifier({.key_file = "/nonexistent/keys.json"}), std::invalid_argument);
  std::remove(path.c_str());
  std::remove(pem_path.c_str());
}

// JWT verification with OpenSSL's EVP interface and simdjson.
//
// Why not libjwt (Debian's 1.10): it picks the key in a callback only after decoding with the
// library's own rules, cannot refuse a token whose `alg` differs from what a `kid` was issued for
// before verifying, and would be one more dependency; OpenSSL is linked already (TLS, hashing) and the
// JWS rules that matter for safety fit in this file: the `kid` selects the key, the key's declared
// algorithm must be the token's, and nothing is trusted before the signature checks.
#include "fanout/token_verifier.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "fanout/detail/jwt.hpp"

namespace fanout {

namespace {

enum class Alg : std::uint8_t { hs256, hs384, hs512, rs256, es256 };

std::optional<Alg> alg_by_name(std::string_view s) noexcept {
  if (s == "HS256") return Alg::hs256;
  if (s == "HS384") return Alg::hs384;
  if (s == "HS512") return Alg::hs512;
  if (s == "RS256") return Alg::rs256;
  if (s == "ES256") return Alg::es256;
  return std::nullopt;
}

const EVP_MD* digest_of(Alg a) noexcept {
  switch (a) {
    case Alg::hs384: return EVP_sha384();
    case Alg::hs512: return EVP_sha512();
    default: return EVP_sha256();
  }
}

bool is_hmac(Alg a) noexcept { return a == Alg::hs256 || a == Alg::hs384 || a == Alg::hs512; }

struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey read_public_key(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return nullptr;
  if (EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)) return Pkey(k);
  // A certificate will do too: its public key is what verifies.
  BIO_reset(bio.get());
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  return cert ? Pkey(X509_get_pubkey(cert.get())) : nullptr;
}

bool is_p256(EVP_PKEY* k) {
  if (EVP_PKEY_base_id(k) != EVP_PKEY_EC) return false;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  char name[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_group_name(k, name, sizeof name, &len) != 1) return false;
  const std::string_view n(name, len);
  return n == "prime256v1" || n == "P-256" || n == "secp256r1";
#else
  return EVP_PKEY_bits(k) == 256;
#endif
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(fmt::format("cannot read {}", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A NumericDate (RFC 7519 section 2): seconds since the epoch, an integer or not.
bool numeric_date(simdjson::dom::element e, double& out) {
  std::int64_t i = 0;
  std::uint64_t u = 0;
  if (!e.get_int64().get(i)) {
    out = static_cast<double>(i);
    return true;
  }
  if (!e.get_uint64().get(u)) {
    out = static_cast<double>(u);
    return true;
  }
  return !e.get_double().get(out) && std::isfinite(out);
}

// Control messages may come in at any rate per shard: one parser per thread, reused.
simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

}  // namespace

std::string_view to_string(TokenError e) noexcept {
  switch (e) {
    case TokenError::none: return "ok";
    case TokenError::malformed: return "malformed token";
    case TokenError::too_large: return "token too large";
    case TokenError::unsupported_alg: return "unsupported alg";
    case TokenError::unknown_kid: return "unknown kid";
    case TokenError::alg_mismatch: return "alg does not match the key";
    case TokenError::bad_signature: return "bad signature";
    case TokenError::expired: return "token expired";
    case TokenError::not_yet_valid: return "token not yet valid (nbf)";
    case TokenError::missing_exp: return "token has no exp";
    case TokenError::bad_claims: return "malformed claims";
    case TokenError::wrong_issuer: return "wrong issuer";
    case TokenError::wrong_audience: return "wrong audience";
  }
  return "invalid token";
}

namespace detail {
struct JwtKeys {
  struct Key {
    Alg alg = Alg::hs256;
    std::string secret;
    Pkey pkey;
    std::string fingerprint;  // alg and material: what tells a changed key on reload
  };
  std::map<std::string, Key, std::less<>> keys;
};
}  // namespace detail
using KeySet = detail::JwtKeys;

namespace {

KeySet::Key load_key(const TokenVerifier::KeySpec& spec) {
  KeySet::Key key;
  const auto alg = alg_by_name(spec.alg);
  if (!alg)
    throw std::invalid_argument(
        fmt::format("key '{}': alg '{}' must be HS256, HS384, HS512, RS256 or ES256", spec.kid, spec.alg));
  key.alg = *alg;
  key.fingerprint = spec.alg + '\n' + spec.secret + '\n' + spec.pem;
  if (is_hmac(key.alg)) {
    // RFC 7518 section 3.2: a key at least as long as the hash.
    const auto need = static_cast<std::size_t>(EVP_MD_size(digest_of(key.alg)));
    if (spec.secret.size() < need)
      throw std::invalid_argument(
          fmt::format("key '{}': an {} secret needs at least {} bytes", spec.kid, spec.alg, need));
    if (!spec.pem.empty())
      throw std::invalid_argument(fmt::format("key '{}': an HMAC key takes a secret, not a pem", spec.kid));
    key.secret = spec.secret;
    return key;
  }
  if (!spec.secret.empty())
    throw std::invalid_argument(
        fmt::format("key '{}': an {} key takes a public key (pem), not a secret", spec.kid, spec.alg));
  key.pkey = read_public_key(spec.pem);
  if (!key.pkey) throw std::invalid_argument(fmt::format("key '{}': not a PEM public key or certificate", spec.kid));
  if (key.alg == Alg::rs256 &&
      (EVP_PKEY_base_id(key.pkey.get()) != EVP_PKEY_RSA || EVP_PKEY_bits(key.pkey.get()) < 2048))
    throw std::invalid_argument(fmt::format("key '{}': RS256 needs an RSA key of at least 2048 bits", spec.kid));
  if (key.alg == Alg::es256 && !is_p256(key.pkey.get()))
    throw std::invalid_argument(fmt::format("key '{}': ES256 needs a P-256 EC key", spec.kid));
  return key;
}

std::shared_ptr<KeySet> load_keys(const std::vector<TokenVerifier::KeySpec>& specs) {
  auto set = std::make_shared<KeySet>();
  for (const auto& spec : specs) {
    if (set->keys.contains(spec.kid)) throw std::invalid_argument(fmt::format("key '{}' appears twice", spec.kid));
    set->keys.emplace(spec.kid, load_key(spec));
  }
  return set;
}

bool verify_signature(const KeySet::Key& key, std::string_view input, std::string_view sig) {
  if (is_hmac(key.alg)) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(digest_of(key.alg), key.secret.data(), static_cast<int>(key.secret.size()),
              reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len))
      return false;
    return sig.size() == len && CRYPTO_memcmp(mac, sig.data(), len) == 0;
  }
  std::string der;
  if (key.alg == Alg::es256) {
    der = detail::ecdsa_raw_to_der(sig, 32);
    if (der.empty()) return false;
    sig = der;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

}  // namespace

TokenVerifier::TokenVerifier(Options options) : options_(std::move(options)), keys_(std::make_shared<KeySet>()) {
  if (!options_.key_file.empty()) {
    auto r = reload();
    if (!r.ok) throw std::invalid_argument(fmt::format("{}: {}", options_.key_file, r.error));
  }
}

TokenVerifier::~TokenVerifier() = default;

std::shared_ptr<const KeySet> TokenVerifier::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

std::vector<std::string> TokenVerifier::kids() const {
  std::vector<std::string> out;
  for (const auto& [kid, key] : keys()->keys) out.push_back(kid);
  return out;
}

void TokenVerifier::set_keys(const std::vector<KeySpec>& specs) {
  auto set = load_keys(specs);  // throws before anything changes
  std::lock_guard lock(mutex_);
  keys_ = std::move(set);
}

TokenVerifier::Reload TokenVerifier::reload() {
  Reload r;
  if (options_.key_file.empty()) {
    r.error = "no key_file";
    return r;
  }
  std::shared_ptr<KeySet> set;
  try {
    const auto slash = options_.key_file.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : options_.key_file.substr(0, slash);
    set = load_keys(parse_key_file(read_file(options_.key_file), dir));
  } catch (const std::exception& e) {
    r.error = e.what();
    return r;
  }
  std::lock_guard lock(mutex_);
  for (const auto& [kid, key] : set->keys) {
    auto old = keys_->keys.find(kid);
    if (old == keys_->keys.end())
      r.added.push_back(kid);
    else if (old->second.fingerprint != key.fingerprint)
      r.changed.push_back(kid);
  }
  for (const auto& [kid, key] : keys_->keys)
    if (!set->keys.contains(kid)) r.removed.push_back(kid);
  keys_ = std::move(set);
  r.ok = true;
  return r;
}

std::vector<TokenVerifier::KeySpec> TokenVerifier::parse_key_file(std::string_view json, const std::string& dir) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array keys;
  if (parser.parse(json.data(), json.size(), true).get(doc)) throw std::invalid_argument("key file is not valid JSON");
  if (doc["keys"].get_array().get(keys)) throw std::invalid_argument(R"(key file needs {"keys": [...]})");
  std::vector<KeySpec> out;
  for (auto entry : keys) {
    simdjson::dom::object o;
    if (entry.get_object().get(o)) throw std::invalid_argument("every entry of \"keys\" must be an object");
    KeySpec spec;
    std::string_view s;
    if (o["kid"].get_string().get(s)) throw std::invalid_argument("every key needs a string \"kid\"");
    spec.kid = s;
    for (auto [name, value] : o) {
      if (name == "kid") continue;
      if (value.get_string().get(s))
        throw std::invalid_argument(fmt::format("key '{}': \"{}\" must be a string", spec.kid, name));
      if (name == "alg") {
        spec.alg = s;
      } else if (name == "secret") {
        spec.secret = s;
      } else if (name == "secret_base64url") {
        auto b = detail::base64url_decode(s);
        if (!b) throw std::invalid_argument(fmt::format("key '{}': secret_base64url is not base64url", spec.kid));
        spec.secret = std::move(*b);
      } else if (name == "pem") {
        spec.pem = s;
      } else if (name == "pem_file") {
        const std::string path(s);
        spec.pem = read_file(path.starts_with('/') ? path : dir + '/' + path);
      } else {
        throw std::invalid_argument(fmt::format("key '{}': unknown field \"{}\"", spec.kid, name));
      }
    }
    out.push_back(std::move(spec));
  }
  return out;
}

TokenVerifier::Result TokenVerifier::verify(std::string_view token) const {
  return verify(token, Identity::Clock::now());
}

TokenVerifier::Result TokenVerifier::verify(std::string_view token, Identity::Clock::time_point now) const {
  Result r;
  auto fail = [&r](TokenError e) {
    r.error = e;
    r.identity = {};
    return r;
  };
  if (token.size() > options_.max_token_bytes) return fail(TokenError::too_large);
  const auto parts = detail::split_jwt(token);
  if (!parts) return fail(TokenError::malformed);
  const auto header = detail::base64url_decode(parts->header);
  const auto signature = detail::base64url_decode(parts->signature);
  if (!header || !signature) return fail(TokenError::malformed);

  // The header picks the key; nothing else in it is trusted, and an unknown `crit` is refused (RFC 7515 4.1.11).
  auto& parser = thread_parser();
  simdjson::dom::object h;
  if (parser.parse(header->data(), header->size(), true).get_object().get(h)) return fail(TokenError::malformed);
  std::string_view alg_name, kid;
  if (h["alg"].get_string().get(alg_name)) return fail(TokenError::unsupported_alg);
  const auto alg = alg_by_name(alg_name);
  if (!alg) return fail(TokenError::unsupported_alg);
  const bool has_kid = h["kid"].error() != simdjson::NO_SUCH_FIELD;
  if (has_kid && h["kid"].get_string().get(kid)) return fail(TokenError::malformed);
  if (h["crit"].error() != simdjson::NO_SUCH_FIELD) return fail(TokenError::malformed);

  const auto set = keys();
  const KeySet::Key* key = nullptr;
  if (has_kid) {
    auto it = set->keys.find(kid);
    if (it != set->keys.end()) {
      key = &it->second;
      r.identity.kid = it->first;
    }
  } else if (set->keys.size() == 1) {
    key = &set->keys.begin()->second;
    r.identity.kid = set->keys.begin()->first;
  }
  if (!key) return fail(TokenError::unknown_kid);
  if (key->alg != *alg) return fail(TokenError::alg_mismatch);
  if (!verify_signature(*key, parts->signing_input, *signature)) return fail(TokenError::bad_signature);

  // Signed: now the claims.
  auto payload = detail::base64url_decode(parts->payload);
  if (!payload) return fail(TokenError::malformed);
  simdjson::dom::object c;
  if (parser.parse(payload->data(), payload->size(), true).get_object().get(c)) return fail(TokenError::malformed);
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = static_cast<double>(options_.leeway.count());
  bool has_exp = false;
  for (auto [name, value] : c) {
    std::string_view s;
    if (name == "sub") {
      if (value.get_string().get(s)) return fail(TokenError::bad_claims);
      r.identity.user = s;
    } else if (name == "exp") {
      double exp = 0;
      if (!numeric_date(value, exp)) return fail(TokenError::bad_claims);
      if (t >= exp + leeway) return fail(TokenError::expired);
      has_exp = true;
      // Clamped so the clock's nanosecond count cannot overflow (year 2255; `exp` that far is "never").
      r.identity.expires = Identity::Clock::time_point(
          std::chrono::duration_cast<Identity::Clock::duration>(std::chrono::duration<double>(std::min(exp, 9e9))));
    } else if (name == "nbf") {
      double nbf = 0;
      if (!numeric_date(value, nbf)) return fail(TokenError::bad_claims);
      if (t < nbf - leeway) return fail(TokenError::not_yet_valid);
    } else if (name == "iss") {
      if (value.get_string().get(s)) return fail(TokenError::bad_claims);
      if (!options_.issuer.empty() && s != options_.issuer) return fail(TokenError::wrong_issuer);
    } else if (name == "topics") {
      simdjson::dom::array a;
      if (value.get_array().get(a)) return fail(TokenError::bad_claims);
      for (auto e : a) {
        if (e.get_string().get(s)) return fail(TokenError::bad_claims);
        r.identity.topics.emplace_back(s);
      }
    } else if (name == "topic" || name == "channel") {
      if (value.get_string().get(s)) return fail(TokenError::bad_claims);
      if (r.identity.topic && *r.identity.topic != s) return fail(TokenError::bad_claims);
      r.identity.topic = std::string(s);
    }
  }
  if (!has_exp && options_.require_exp) return fail(TokenError::missing_exp);
  if (!options_.issuer.empty() && c["iss"].error() == simdjson::NO_SUCH_FIELD) return fail(TokenError::wrong_issuer);
  if (!options_.audience.empty()) {
    auto aud = c["aud"];
    std::string_view s;
    simdjson::dom::array a;
    bool found = false;
    if (!aud.get_string().get(s)) {
      found = s == options_.audience;
    } else if (!aud.get_array().get(a)) {
      for (auto e : a)
        if (!e.get_string().get(s) && s == options_.audience) found = true;
    }
    if (!found) return fail(TokenError::wrong_audience);
  }
  r.identity.claims = std::move(*payload);
  return r;
}

}  // namespace fanout

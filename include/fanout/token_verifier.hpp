// fanout/token_verifier.hpp — verifies JWT connection and subscribe tokens against a set of keys.
//
// Algorithms: HS256/384/512 (a shared secret), RS256 (an RSA public key, >= 2048 bits) and ES256
// (a P-256 public key). Strict by construction: the token's `kid` picks the key before any
// verification, the token's `alg` must be the one that key is declared for (so an RSA public key can
// never be used as an HMAC secret, and `alg: none` names no key), `exp` and `nbf` are checked with
// `leeway`, and `iss`/`aud` when configured.
//
// Keys come from a JSON file (Options::key_file) read at construction and again on reload():
//
//   {"keys": [
//     {"kid": "2026-12", "alg": "HS256", "secret": "a long random string"},
//     {"kid": "hs-b64", "alg": "HS512", "secret_base64url": "c2VjcmV0..."},
//     {"kid": "rsa-1", "alg": "RS256", "pem": "-----BEGIN PUBLIC KEY-----\n..."},
//     {"kid": "ec-1", "alg": "ES256", "pem_file": "keys/ec-1.pub.pem"}
//   ]}
//
// (pem_file is relative to the key file's directory). A token without `kid` is accepted only while
// the set holds exactly one key.
//
//   fanout::TokenVerifier verifier({.key_file = "/etc/fanout/keys.json"});
//   if (auto r = verifier.verify(token)) use(r.identity); else log(fanout::to_string(r.error));
//
// Thread safety: verify() from any thread, concurrently with reload() and set_keys() from any other:
// a verification uses the key set it started with; a reload swaps in a complete new set or nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/export.hpp"

#include "fanout/identity.hpp"

namespace fanout {

namespace detail {
struct JwtKeys;
}

/// Why a token was refused. to_string() gives the reason the client sees.
enum class TokenError : std::uint8_t {
  none = 0,
  malformed,        // not three base64url parts, or a header/claims part that is not a JSON object
  too_large,        // over Options::max_token_bytes
  unsupported_alg,  // `alg` missing, `none`, or not one of the five
  unknown_kid,      // no key with this `kid` (or no `kid` and not exactly one key)
  alg_mismatch,     // the key is declared for another algorithm
  bad_signature,
  expired,        // `exp` + leeway has passed
  not_yet_valid,  // `nbf` - leeway is still ahead
  missing_exp,    // Options::require_exp and no `exp`
  bad_claims,     // a registered claim of the wrong type (`exp` not a number, `topics` not strings...)
  wrong_issuer,
  wrong_audience,
};
FANOUT_API std::string_view to_string(TokenError e) noexcept;

class FANOUT_API TokenVerifier {
 public:
  struct Options {
    std::string key_file{};                  // JSON, see above; empty: keys come from set_keys()
    std::chrono::seconds leeway{5};          // clock skew allowed on exp and nbf
    bool require_exp = true;                 // tokens without `exp` are refused
    std::string issuer{};                    // when set, `iss` must equal it
    std::string audience{};                  // when set, `aud` (a string or a list) must hold it
    std::size_t max_token_bytes = 8 * 1024;  // longer tokens are refused before decoding
  };

  /// One key as the file declares it. `alg`: HS256, HS384, HS512, RS256 or ES256.
  struct KeySpec {
    std::string kid;
    std::string alg;
    std::string secret{};  // HS*: the shared secret's bytes (at least 32)
    std::string pem{};     // RS256/ES256: PEM public key (SubjectPublicKeyInfo) or certificate
  };

  struct Result {
    TokenError error = TokenError::none;
    Identity identity{};
    explicit operator bool() const noexcept { return error == TokenError::none; }
  };

  /// What a reload did; on failure (`ok` false) the previous keys stay in use.
  struct Reload {
    bool ok = false;
    std::string error{};                                     // why the file was refused
    std::vector<std::string> added{}, removed{}, changed{};  // kids
  };

  /// Reads Options::key_file when set. Throws std::invalid_argument on a bad file or key.
  explicit TokenVerifier(Options options);
  ~TokenVerifier();
  TokenVerifier(const TokenVerifier&) = delete;
  TokenVerifier& operator=(const TokenVerifier&) = delete;

  Result verify(std::string_view token) const;
  /// verify() at a given time (tests, replays).
  Result verify(std::string_view token, Identity::Clock::time_point now) const;

  /// Reads Options::key_file again and swaps the keys in when all of them load.
  Reload reload();
  /// Replaces the keys. Throws std::invalid_argument (keeping the old keys) when one does not load.
  void set_keys(const std::vector<KeySpec>& keys);
  /// The kids in use now, sorted.
  std::vector<std::string> kids() const;
  const Options& options() const noexcept { return options_; }

  /// Parses a key file's text; pem_file entries are read relative to `dir`. Throws std::invalid_argument.
  static std::vector<KeySpec> parse_key_file(std::string_view json, const std::string& dir = ".");

 private:
  std::shared_ptr<const detail::JwtKeys> keys() const;

  Options options_;
  mutable std::mutex mutex_;  // guards keys_ (the pointer; a KeySet never changes)
  std::shared_ptr<const detail::JwtKeys> keys_;
};

}  // namespace fanout

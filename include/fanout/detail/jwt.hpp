// fanout/detail/jwt.hpp — the hand-written pieces of JWT verification (RFC 7515/7518), small and
// unit-tested on their own: base64url without padding, and ECDSA's raw r||s signature as DER.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fanout::detail {

/// Decodes unpadded base64url (RFC 4648 section 5). Refuses padding, whitespace, other alphabets,
/// an impossible length (4n+1) and non-zero trailing bits, so one token has one spelling.
std::optional<std::string> base64url_decode(std::string_view in);
/// Encodes without padding.
std::string base64url_encode(std::string_view in);

/// A JWS ES256/384/512 signature is r||s, each `n` bytes big-endian (RFC 7518 section 3.4); OpenSSL
/// verifies the DER form (SEQUENCE { INTEGER r, INTEGER s }). Empty when `raw` is not 2n bytes.
std::string ecdsa_raw_to_der(std::string_view raw, std::size_t n);

/// The three parts of a compact JWS, split at its two dots (no decoding).
struct JwtParts {
  std::string_view header, payload, signature;
  std::string_view signing_input;  // header '.' payload: what the signature covers
};
std::optional<JwtParts> split_jwt(std::string_view token) noexcept;

}  // namespace fanout::detail

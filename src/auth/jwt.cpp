// base64url and the ECDSA signature form: the only parts of JWT handling written here by hand
// (OpenSSL does the cryptography, simdjson the JSON).
#include "fanout/detail/jwt.hpp"

#include <array>

namespace fanout::detail {

namespace {
constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(k_alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto k_table = make_table();

/// A DER INTEGER from an unsigned big-endian number: leading zeros dropped, a 0x00 put back when the
/// high bit is set (DER integers are signed).
void append_der_integer(std::string& out, std::string_view be) {
  while (be.size() > 1 && be.front() == '\0') be.remove_prefix(1);
  const bool pad = !be.empty() && (static_cast<unsigned char>(be.front()) & 0x80);
  out += '\x02';
  out += static_cast<char>(be.size() + pad);
  if (pad) out += '\0';
  out.append(be);
}
}  // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const auto v = k_table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // The bits left over must be zero, or two spellings would decode to the same bytes.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += k_alphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += k_alphabet[(acc << (6 - bits)) & 0x3f];
  return out;
}

std::string ecdsa_raw_to_der(std::string_view raw, std::size_t n) {
  if (n == 0 || n > 66 || raw.size() != 2 * n) return {};
  std::string body;
  append_der_integer(body, raw.substr(0, n));
  append_der_integer(body, raw.substr(n));
  std::string out;
  out += '\x30';
  if (body.size() >= 0x80) out += '\x81';  // at most 2 * (2 + 67) bytes: one length byte suffices
  out += static_cast<char>(body.size());
  out += body;
  return out;
}

std::optional<JwtParts> split_jwt(std::string_view token) noexcept {
  const auto a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) return std::nullopt;
  return JwtParts{.header = token.substr(0, a),
                  .payload = token.substr(a + 1, b - a - 1),
                  .signature = token.substr(b + 1),
                  .signing_input = token.substr(0, b)};
}

}  // namespace fanout::detail

// fanout-loadgen: small WebSocket helpers (the handshake's accept value, frames, RNG for masks).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace fanout::loadgen {

inline constexpr std::string_view k_ws_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// xorshift64*: mask keys and handshake nonces, fast and good enough for a load generator.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ull;
  }

 private:
  uint64_t state_;
};

// base64 of n bytes (OpenSSL's EVP_EncodeBlock).
inline std::string base64(const uint8_t* p, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');  // EVP_EncodeBlock writes a trailing NUL
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

// Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), with OpenSSL's SHA-1.
inline std::string websocket_accept(std::string_view key) {
  std::string s(key);
  s += k_ws_guid;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha1(), nullptr);
  return base64(md, len);
}

// Appends a frame header (FIN set) for a payload of n bytes; masked adds the mask bit and key.
inline void append_frame_header(std::string& out, uint8_t opcode, uint64_t n, bool masked, uint32_t mask_key) {
  const char mbit = masked ? static_cast<char>(0x80) : 0;
  out.push_back(static_cast<char>(0x80 | opcode));
  if (n < 126) {
    out.push_back(static_cast<char>(mbit | static_cast<char>(n)));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(mbit | 126));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(mbit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (i * 8)) & 0xff));
  }
  if (masked) {
    char k[4];
    std::memcpy(k, &mask_key, 4);
    out.append(k, 4);
  }
}

// Appends a complete client (masked) frame.
inline void append_masked_frame(std::string& out, uint8_t opcode, const char* payload, size_t n, uint32_t mask_key) {
  append_frame_header(out, opcode, n, true, mask_key);
  unsigned char k[4];
  std::memcpy(k, &mask_key, 4);
  const size_t at = out.size();
  out.append(payload, n);
  for (size_t i = 0; i < n; ++i) out[at + i] = static_cast<char>(static_cast<unsigned char>(out[at + i]) ^ k[i & 3]);
}

// Topic names are used verbatim in JSON strings and URLs; escape the few characters that matter.
inline void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('"');
}

inline void append_url_component(std::string& out, std::string_view s) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' || u == '_' ||
        u == '.' || u == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(k_hex[u >> 4]);
      out.push_back(k_hex[u & 15]);
    }
  }
}

}  // namespace fanout::loadgen

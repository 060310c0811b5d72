#include "fanout/detail/handshake.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <fmt/format.h>

namespace fanout::detail {

std::string websocket_accept(std::string_view key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += guid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

bool valid_websocket_key(std::string_view key) noexcept {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22)) {
    const bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!b64) return false;
  }
  return true;
}

std::string http_response(int status, std::string_view reason, std::string_view extra_headers,
                          std::string_view content_type, std::string_view body, bool keep_alive) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nServer: fanout\r\nConnection: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n{}",
      status, reason, keep_alive ? "keep-alive" : "close", content_type, body.size(), extra_headers, body);
}

std::string_view http_reason(int status) noexcept {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

}  // namespace fanout::detail

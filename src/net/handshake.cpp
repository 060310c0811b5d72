#include "fanout/detail/handshake.hpp"

#include <fmt/format.h>

namespace fanout::detail {

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
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace fanout::detail

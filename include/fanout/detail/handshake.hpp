// fanout/detail/handshake.hpp — RFC 6455 section 4 server side, and the HTTP answers fanout gives.
#pragma once

#include <string>
#include <string_view>

namespace fanout::detail {

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string websocket_accept(std::string_view key);
/// A key is the base64 encoding of 16 bytes: 24 characters ending in "==".
bool valid_websocket_key(std::string_view key) noexcept;
/// A complete HTTP/1.1 response; without keep_alive it says the connection closes.
std::string http_response(int status, std::string_view reason, std::string_view extra_headers,
                          std::string_view content_type, std::string_view body, bool keep_alive = false);
/// The standard reason phrase of an HTTP status ("Not Found"), or "Unknown".
std::string_view http_reason(int status) noexcept;

}  // namespace fanout::detail

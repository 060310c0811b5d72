// fanout/detail/handshake.hpp — the HTTP answers fanout gives (the WebSocket key math is in websocket_key.hpp).
#pragma once

#include <string>
#include <string_view>

// Transitional: src/ingest/upstream.cpp and tests/unit/upstream_test.cpp still reach websocket_accept
// through this header; once they include websocket_key.hpp themselves, drop this line.
#include "fanout/detail/websocket_key.hpp"

namespace fanout::detail {

/// A complete HTTP/1.1 response; without keep_alive it says the connection closes.
std::string http_response(int status, std::string_view reason, std::string_view extra_headers,
                          std::string_view content_type, std::string_view body, bool keep_alive = false);
/// The standard reason phrase of an HTTP status ("Not Found"), or "Unknown".
std::string_view http_reason(int status) noexcept;

}  // namespace fanout::detail

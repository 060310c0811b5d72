// fanout/detail/websocket_key.hpp — RFC 6455 section 4's key and accept values, for both ends of a
// handshake: the server (net/) answers a key, the upstream client (ingest/) sends one and checks the answer.
#pragma once

#include <string>
#include <string_view>

namespace fanout::detail {

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string websocket_accept(std::string_view key);
/// A key is the base64 encoding of 16 bytes: 24 characters ending in "==".
bool valid_websocket_key(std::string_view key) noexcept;
/// A fresh Sec-WebSocket-Key for a client: 16 random bytes (OpenSSL RAND_bytes), base64-encoded.
std::string make_websocket_key();

}  // namespace fanout::detail

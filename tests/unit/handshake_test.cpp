#include <doctest/doctest.h>

#include <fanout/detail/handshake.hpp>

TEST_CASE("Sec-WebSocket-Accept matches RFC 6455's example") {
  CHECK(fanout::detail::websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("keys must be 16 bytes of base64") {
  CHECK(fanout::detail::valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK_FALSE(fanout::detail::valid_websocket_key("short=="));
  CHECK_FALSE(fanout::detail::valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ!="));
}

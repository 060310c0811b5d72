#include <doctest/doctest.h>

#include <fanout/detail/websocket_key.hpp>

using namespace fanout::detail;

TEST_CASE("Sec-WebSocket-Accept matches RFC 6455's example") {
  CHECK(websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("keys must be 16 bytes of base64") {
  CHECK(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK_FALSE(valid_websocket_key("short=="));
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ!="));
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));
}

TEST_CASE("make_websocket_key gives a valid key, fresh each time") {
  const auto a = make_websocket_key();
  const auto b = make_websocket_key();
  CHECK(valid_websocket_key(a));
  CHECK(valid_websocket_key(b));
  CHECK(a != b);
  CHECK(websocket_accept(a).size() == 28);
}

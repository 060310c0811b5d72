#include <doctest/doctest.h>

#include <fanout/detail/frame_reader.hpp>

#include <string>

using fanout::Opcode;
using fanout::detail::FrameReader;

namespace {
/// A client frame: masked, with a zero key so the payload reads as itself.
std::string client_frame(std::uint8_t opcode, std::string_view payload, bool fin = true) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | opcode);
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  }
  f += std::string(4, '\0');
  f += payload;
  return f;
}

bool feed(FrameReader& r, std::string_view s) { return r.feed(std::as_bytes(std::span(s.data(), s.size()))); }
}  // namespace

TEST_CASE("frame reader: a text message split across feeds") {
  FrameReader r(1024);
  const auto f = client_frame(0x1, R"({"op":"ping"})");
  CHECK(r.idle());
  REQUIRE(feed(r, f.substr(0, 3)));
  CHECK(!r.idle());
  CHECK(r.take_messages().empty());
  REQUIRE(feed(r, f.substr(3)));
  CHECK(r.idle());
  const auto messages = r.take_messages();
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].first == Opcode::text);
  CHECK(messages[0].second == R"({"op":"ping"})");
  CHECK(r.replies().empty());
  CHECK(!r.finished());
}

TEST_CASE("frame reader: a fragmented message is not idle until its last frame") {
  FrameReader r(1024);
  REQUIRE(feed(r, client_frame(0x1, "ab", false)));
  CHECK(!r.idle());
  REQUIRE(feed(r, client_frame(0x9, "p")));  // a ping between fragments
  CHECK(!r.idle());
  CHECK(r.replies() == std::string("\x8A\x01p", 3));  // its pong
  r.replies().clear();
  REQUIRE(feed(r, client_frame(0x0, "cd")));
  CHECK(r.idle());
  const auto messages = r.take_messages();
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].second == "abcd");
}

TEST_CASE("frame reader: the client's close is echoed and ends reading") {
  FrameReader r(1024);
  REQUIRE(feed(r, client_frame(0x8, std::string("\x03\xE8", 2))));
  CHECK(r.close_received());
  CHECK(r.finished());
  CHECK(r.replies() == std::string("\x88\x02\x03\xE8", 4));
  const auto messages = r.take_messages();
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].first == Opcode::close);
}

TEST_CASE("frame reader: framing errors") {
  FrameReader r(1024);
  SUBCASE("a one-byte close payload") { CHECK(!feed(r, client_frame(0x8, "x"))); }
  SUBCASE("a fragmented control frame") { CHECK(!feed(r, client_frame(0x9, "p", false))); }
}

TEST_CASE("frame reader: wslay fails a continuation with no message itself, with 1002") {
  FrameReader r(1024);
  REQUIRE(feed(r, client_frame(0x0, "x")));
  CHECK(r.finished());
  REQUIRE(r.replies().size() >= 4);
  CHECK(r.replies().substr(0, 4) == std::string("\x88\x02\x03\xEA", 4));
}

TEST_CASE("frame reader: an oversize message is closed with 1009") {
  FrameReader r(100);
  REQUIRE(feed(r, client_frame(0x1, std::string(200, 'a'))));
  CHECK(r.finished());
  CHECK(r.take_messages().empty());
  REQUIRE(r.replies().size() >= 4);
  CHECK(r.replies().substr(0, 4) == std::string("\x88\x02\x03\xF1", 4));
}

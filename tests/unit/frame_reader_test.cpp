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
  CHECK(messages[0].op == Opcode::text);
  CHECK(messages[0].payload == R"({"op":"ping"})");
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
  CHECK(messages[0].payload == "abcd");
}

TEST_CASE("frame reader: the client's close is echoed and ends reading") {
  FrameReader r(1024);
  REQUIRE(feed(r, client_frame(0x8, std::string("\x03\xE8", 2))));
  CHECK(r.close_received());
  CHECK(r.finished());
  CHECK(r.replies() == std::string("\x88\x02\x03\xE8", 4));
  const auto messages = r.take_messages();
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].op == Opcode::close);
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

// ---- client mode: the upstream client reads a server's frames and sends masked ones.
namespace {
/// A server frame: unmasked.
std::string server_frame(std::uint8_t opcode, std::string_view payload, bool fin = true, bool rsv1 = false) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode);
  f += static_cast<char>(payload.size());  // under 126 bytes in these tests
  f += payload;
  return f;
}
/// The payload of a client's masked frame (header of 2 + 4 bytes; under 126 bytes), unmasked.
std::string unmask(std::string_view frame) {
  REQUIRE(frame.size() >= 6);
  REQUIRE((static_cast<std::uint8_t>(frame[1]) & 0x80) != 0);
  const std::size_t len = static_cast<std::uint8_t>(frame[1]) & 0x7F;
  REQUIRE(frame.size() == 6 + len);
  std::string out(frame.substr(6));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(out[i] ^ frame[2 + i % 4]);
  return out;
}
constexpr auto client = FrameReader::Role::client;
}  // namespace

TEST_CASE("frame reader, client mode: unmasked server messages, split and fragmented") {
  FrameReader r(1024, client);
  const auto f = server_frame(0x1, R"({"arg":"t"})");
  REQUIRE(feed(r, f.substr(0, 1)));
  CHECK(!r.idle());
  REQUIRE(feed(r, f.substr(1)));
  REQUIRE(feed(r, server_frame(0x2, "ab", false)));
  REQUIRE(feed(r, server_frame(0x0, "cd")));
  CHECK(r.idle());
  const auto messages = r.take_messages();
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].op == Opcode::text);
  CHECK(messages[0].payload == R"({"arg":"t"})");
  CHECK(messages[1].op == Opcode::binary);
  CHECK(messages[1].payload == "abcd");
  CHECK(!messages[1].compressed);
  CHECK(r.replies().empty());
}

TEST_CASE("frame reader, client mode: what it sends is masked") {
  FrameReader r(1024, client);
  REQUIRE(r.send(Opcode::text, R"({"op":"subscribe"})"));
  CHECK(static_cast<std::uint8_t>(r.replies()[0]) == 0x81);
  CHECK(unmask(r.replies()) == R"({"op":"subscribe"})");
  r.replies().clear();
  REQUIRE(r.send(Opcode::ping, ""));
  CHECK(static_cast<std::uint8_t>(r.replies()[0]) == 0x89);
  CHECK(unmask(r.replies()).empty());
  r.replies().clear();
  // The server's ping is answered with a masked pong carrying its payload; its pong is counted.
  REQUIRE(feed(r, server_frame(0x9, "hb")));
  CHECK(r.take_pings() == 1);
  CHECK(static_cast<std::uint8_t>(r.replies()[0]) == 0x8A);
  CHECK(unmask(r.replies()) == "hb");
  REQUIRE(feed(r, server_frame(0xA, "")));
  CHECK(r.take_pongs() == 1);
  CHECK(r.take_messages().empty());
}

TEST_CASE("frame reader, client mode: a masked frame from a server is a protocol error") {
  FrameReader r(1024, client);
  REQUIRE(feed(r, client_frame(0x1, "hello")));  // masked, as only a client may send
  CHECK(r.take_messages().empty());
  CHECK(r.finished());  // wslay closed with 1002: reading is over
  CHECK(r.close_code_sent() == 1002);
  CHECK(!r.close_received());
}

TEST_CASE("frame reader, client mode: the server's close is echoed, with its code") {
  FrameReader r(1024, client);
  CHECK(r.close_code_received() == 0);
  REQUIRE(feed(r, server_frame(0x8, std::string("\x03\xE9", 2) + "bye")));
  CHECK(r.close_received());
  CHECK(r.close_code_received() == 1001);
  CHECK(r.finished());
  REQUIRE(r.replies().size() >= 6);
  CHECK(static_cast<std::uint8_t>(r.replies()[0]) == 0x88);
  CHECK(unmask(r.replies()).substr(0, 2) == std::string("\x03\xE9", 2));
  CHECK(!r.send(Opcode::text, "late"));  // nothing after a close
}

TEST_CASE("frame reader, client mode: RSV1 only once permessage-deflate is allowed") {
  SUBCASE("not agreed: a protocol error") {
    FrameReader r(1024, client);
    REQUIRE(feed(r, server_frame(0x1, "x", true, true)));
    CHECK(r.take_messages().empty());
    CHECK(r.finished());
    CHECK(r.close_code_sent() == 1002);
  }
  SUBCASE("agreed: reported on the message") {
    FrameReader r(1024, client);
    r.allow_rsv1();
    REQUIRE(feed(r, server_frame(0x1, "x", true, true)));
    const auto messages = r.take_messages();
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].compressed);
    CHECK(messages[0].payload == "x");
  }
}

TEST_CASE("frame reader, client mode: an oversize message is closed with 1009") {
  FrameReader r(10, client);
  REQUIRE(feed(r, server_frame(0x1, std::string(50, 'a'))));
  CHECK(r.finished());
  CHECK(r.take_messages().empty());
  CHECK(r.close_code_sent() == 1009);
}

TEST_CASE("frame reader: send_close frames the code and the reason") {
  FrameReader r(1024);  // server mode: unmasked
  REQUIRE(r.send_close(1001, "bye"));
  CHECK(r.replies() == std::string("\x88\x05\x03\xE9"
                                   "bye",
                                   7));
  CHECK(r.close_code_sent() == 1001);
  CHECK(r.finished());
  CHECK(!r.send_close(1000));
}

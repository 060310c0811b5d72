#include <doctest/doctest.h>

#include <fanout/detail/handshake_reader.hpp>

#include <string>
#include <vector>

using fanout::detail::HandshakeReader;
using Kind = HandshakeReader::Kind;

namespace {
const std::vector<std::string> k_paths = {"/ws", "/feed"};

HandshakeReader::Decision feed(HandshakeReader& r, std::string_view s) {
  return r.feed(std::as_bytes(std::span(s.data(), s.size())));
}

std::string upgrade_head(std::string_view path = "/ws",
                         std::string_view key = "dGhlIHNhbXBsZSBub25jZQ==", std::string_view version = "13") {
  return "GET " + std::string(path) +
         " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " +
         std::string(key) + "\r\nSec-WebSocket-Version: " + std::string(version) + "\r\n\r\n";
}
}  // namespace

TEST_CASE("handshake reader: an upgrade split anywhere, with frames behind it") {
  const auto head = upgrade_head("/ws?subscribe=a");
  for (std::size_t cut = 1; cut < head.size(); cut += 7) {
    HandshakeReader r(8192, 0, k_paths);
    CHECK(feed(r, head.substr(0, cut)).kind == Kind::need_more);
    const auto rest = head.substr(cut) + "\x81\x80";
    const auto d = feed(r, rest);
    REQUIRE(d.kind == Kind::upgrade);
    CHECK(d.consumed == rest.size() - 2);
    CHECK(r.request().path() == "/ws");
    CHECK(r.request().query() == "subscribe=a");
  }
}

TEST_CASE("handshake reader: refusals on a WebSocket path") {
  HandshakeReader r(8192, 0, k_paths);
  SUBCASE("bad key") {
    const auto d = feed(r, upgrade_head("/ws", "short"));
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 400);
    CHECK(d.answer.body == "missing or invalid Sec-WebSocket-Key\n");
  }
  SUBCASE("wrong version") {
    const auto d = feed(r, upgrade_head("/feed", "dGhlIHNhbXBsZSBub25jZQ==", "8"));
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 426);
    CHECK(d.answer.extra_headers.find("Sec-WebSocket-Version: 13") != std::string_view::npos);
  }
  SUBCASE("no upgrade headers") {
    const auto d = feed(r, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 426);
  }
  SUBCASE("HTTP/1.0") {
    const auto d = feed(r, "GET /ws HTTP/1.0\r\nHost: x\r\n\r\n");
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 400);
  }
  SUBCASE("POST") {
    const auto d = feed(r, "POST /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 405);
    CHECK(d.answer.extra_headers == "Allow: GET\r\n");
  }
  SUBCASE("garbage") {
    const auto d = feed(r, "\x16\x03\x01 hello\r\n\r\n");
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 400);
  }
}

TEST_CASE("handshake reader: an oversize head is 431, even in pieces") {
  HandshakeReader r(1024, 0, k_paths);
  CHECK(feed(r, "GET /ws HTTP/1.1\r\nX: ").kind == Kind::need_more);
  const auto d = feed(r, std::string(2000, 'a') + "\r\n\r\n");
  CHECK(d.kind == Kind::answer);
  CHECK(d.answer.status == 431);
}

TEST_CASE("handshake reader: plain GETs are left to the session, pipelined one after another") {
  HandshakeReader r(8192, 0, k_paths);
  const std::string one = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string two = "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string both = one + two;
  auto d = feed(r, both);
  REQUIRE(d.kind == Kind::plain);
  CHECK(d.consumed == one.size());
  CHECK(r.request().path() == "/healthz");
  const auto rest = std::string_view(both).substr(d.consumed);
  d = feed(r, rest);
  REQUIRE(d.kind == Kind::plain);
  CHECK(d.consumed == rest.size());
  CHECK(r.request().method() == "HEAD");
  CHECK(r.request().path() == "/metrics");
  r.release();
  // Then an upgrade on the same connection.
  d = feed(r, upgrade_head());
  CHECK(d.kind == Kind::upgrade);
}

TEST_CASE("handshake reader: bodies, 100-continue, 411 and 413") {
  HandshakeReader r(8192, 16, k_paths);
  SUBCASE("Expect: 100-continue asks for a 100 once, when the head is complete") {
    const std::string head = "POST /api HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    auto d = feed(r, head);
    CHECK(d.kind == Kind::need_more);
    CHECK(d.send_continue);
    d = feed(r, "ab");
    CHECK(d.kind == Kind::need_more);
    CHECK(!d.send_continue);
    d = feed(r, "cdGET");
    REQUIRE(d.kind == Kind::plain);
    CHECK(d.consumed == 2);
    CHECK(r.request().body() == "abcd");
  }
  SUBCASE("too large") {
    const auto d = feed(r, "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n");
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 413);
  }
  SUBCASE("chunked") {
    const auto d = feed(r, "POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(d.kind == Kind::answer);
    CHECK(d.answer.status == 411);
  }
}

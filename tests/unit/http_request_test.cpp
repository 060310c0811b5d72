#include <doctest/doctest.h>

#include <fanout/http.hpp>

#include <string>

using fanout::HttpRequest;

static HttpRequest::Status feed(HttpRequest& r, std::string_view s, std::size_t& consumed) {
  return r.feed(std::as_bytes(std::span(s.data(), s.size())), consumed);
}

TEST_CASE("a WebSocket upgrade head, fed in pieces") {
  HttpRequest r(8192);
  std::size_t consumed = 0;
  const std::string head =
      "GET /ws?subscribe=a,b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  CHECK(feed(r, head.substr(0, 20), consumed) == HttpRequest::Status::incomplete);
  CHECK(feed(r, head.substr(20) + "\x81\x80", consumed) == HttpRequest::Status::complete);
  CHECK(consumed == head.size() - 20);
  CHECK(r.method() == "GET");
  CHECK(r.path() == "/ws");
  CHECK(r.query() == "subscribe=a,b");
  CHECK(r.header("upgrade") == "websocket");
  CHECK(r.header_has_token("Connection", "upgrade"));
  CHECK(r.http11());
}

TEST_CASE("garbage is a bad request") {
  HttpRequest r(8192);
  std::size_t consumed = 0;
  CHECK(feed(r, "\x16\x03\x01 hello\r\n\r\n", consumed) == HttpRequest::Status::bad);
}

TEST_CASE("a head over the limit is refused") {
  HttpRequest r(1024);
  std::size_t consumed = 0;
  std::string head = "GET / HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n";
  CHECK(feed(r, head, consumed) == HttpRequest::Status::too_large);
}

TEST_CASE("query parameters are decoded") {
  using fanout::detail::query_param;
  CHECK(query_param("a=1&subscribe=t%2C1,t2", "subscribe") == "t,1,t2");
  CHECK(!query_param("a=1", "subscribe"));
  CHECK(!query_param("subscribe=%zz", "subscribe"));
}

namespace {
// The verdict on `head`, fed in one piece and byte by byte: both must agree.
HttpRequest::Status verdict(std::string_view head) {
  HttpRequest whole(8192), bytes(8192);
  std::size_t consumed = 0;
  const auto once = feed(whole, head, consumed);
  auto split = HttpRequest::Status::incomplete;
  for (std::size_t i = 0; i < head.size() && split == HttpRequest::Status::incomplete; ++i)
    split = feed(bytes, head.substr(i, 1), consumed);
  CHECK(once == split);
  return once;
}
}  // namespace

TEST_CASE("strict HTTP: the same verdict whether a head comes whole or byte by byte") {
  using S = HttpRequest::Status;
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == S::complete);
  CHECK(verdict("\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == S::complete);  // RFC 9112 2.2
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") == S::complete);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost:x\r\nX-Empty:\r\n\r\n") == S::complete);
  // Bodies: none is accepted, so none can be read as the next request.
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n") == S::bad);
  CHECK(verdict("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Transfer-Encoding: chunked\r\n\r\n") == S::bad);
  // Line ends, folding, whitespace before the colon, two Hosts.
  CHECK(verdict("GET /healthz HTTP/1.1\nHost: x\n\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\n\r\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost\t: x\r\n\r\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n") == S::bad);
  CHECK(verdict("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\rX\r\n\r\n") == S::bad);
}

TEST_CASE("strict HTTP: the bytes after a head are not scanned as part of it") {
  HttpRequest r(8192);
  std::size_t consumed = 0;
  const std::string head = "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(feed(r, head + "\n \x81\x80", consumed) == HttpRequest::Status::complete);
  CHECK(consumed == head.size());
}

namespace {
// A request fed whole and byte by byte to a reader that allows bodies up to `max_body`.
struct BodyVerdict {
  HttpRequest::Status status;
  std::string body;
  std::size_t consumed;
};
BodyVerdict with_body(std::string_view text, std::size_t max_body = 64) {
  HttpRequest whole(8192, max_body), bytes(8192, max_body);
  std::size_t consumed = 0, at = 0, last = 0;
  const auto once = feed(whole, text, consumed);
  auto split = HttpRequest::Status::incomplete;
  for (; at < text.size() && split == HttpRequest::Status::incomplete; ++at)
    split = feed(bytes, text.substr(at, 1), last);
  CHECK(once == split);
  if (once == HttpRequest::Status::complete) {
    CHECK(whole.body() == bytes.body());
    CHECK(at - 1 + last == consumed);  // the same end of the request, however it came
  }
  return {once, std::string(whole.body()), consumed};
}
}  // namespace

TEST_CASE("bodies: read by Content-Length where allowed, and only there") {
  using S = HttpRequest::Status;
  const std::string post = "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  SUBCASE("refused where no body is served (the default)") {
    HttpRequest r(8192);
    std::size_t consumed = 0;
    CHECK(feed(r, post, consumed) == S::bad);
  }
  SUBCASE("read, and the bytes after it belong to the next request") {
    const auto v = with_body(post + "GET /healthz HTTP/1.1\r\n\r\n");
    CHECK(v.status == S::complete);
    CHECK(v.body == "hello");
    CHECK(v.consumed == post.size());
  }
  SUBCASE("a body exactly at the limit, and one byte over it (refused before it is read)") {
    CHECK(with_body(post, 5).status == S::complete);
    CHECK(with_body(post, 4).status == S::body_too_large);
    CHECK(with_body("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n").status == S::bad);
    CHECK(with_body("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n").status ==
          S::body_too_large);
  }
  SUBCASE("a short body is incomplete, never complete") {
    HttpRequest r(8192, 64);
    std::size_t consumed = 0;
    CHECK(feed(r, post.substr(0, post.size() - 2), consumed) == S::incomplete);
    CHECK(r.awaiting_body());
    CHECK(feed(r, "lo", consumed) == S::complete);
    CHECK(consumed == 2);
    CHECK(r.body() == "hello");
    CHECK(!r.awaiting_body());
  }
  SUBCASE("Transfer-Encoding: 411 alone, 400 beside a Content-Length") {
    CHECK(with_body("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").status ==
          S::length_required);
    CHECK(with_body("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello")
              .status == S::bad);
  }
  SUBCASE("two Content-Lengths, and a GET or HEAD with a body, are bad") {
    CHECK(with_body("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!").status ==
          S::bad);
    CHECK(with_body("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").status == S::bad);
    CHECK(with_body("HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").status == S::bad);
    CHECK(with_body("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status == S::complete);
  }
}

TEST_CASE("routes serve their methods, HEAD wherever GET") {
  const fanout::HttpRoute get{"/a", false, nullptr};
  const fanout::HttpRoute post{"/b", false, nullptr, {"POST"}};
  CHECK(get.serves("GET"));
  CHECK(get.serves("HEAD"));
  CHECK(!get.serves("POST"));
  CHECK(post.serves("POST"));
  CHECK(!post.serves("GET"));
  CHECK(!post.serves("HEAD"));
}

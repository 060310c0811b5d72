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

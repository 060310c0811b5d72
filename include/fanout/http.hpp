// fanout/http.hpp — plain HTTP on the WebSocket port: the request head (parsed strictly by
// nodejs/http-parser, plus the rules it lets through: no bare LF, no obs-fold, no whitespace before a
// colon, one Host), a Content-Length body where the listener allows one (Server::Options::
// max_request_body_bytes; none by default), and routes an application adds for its own endpoints.
//
//   options.http_routes.push_back({"/metrics", false, [&](const fanout::HttpRequest&) {
//     return fanout::HttpResponse{.content_type = "text/plain; version=0.0.4", .body = scrape()};
//   }});
//   options.http_routes.push_back({"/api/publish", false, [&](const fanout::HttpRequest& req) {
//     return fanout::HttpResponse{.body = handle(req.body())};
//   }, {"POST"}});
//
// Thread safety: a route's handler runs on the shard thread of the connection that asked, so on
// several shards at once: it must be thread-safe, and quick (it holds up that shard's loop).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fanout/export.hpp"

namespace fanout {

class FANOUT_API HttpRequest {
 public:
  enum class Status {
    incomplete,
    complete,
    bad,              // 400: malformed, or a rule below broken
    too_large,        // 431: the head is longer than max_head_bytes
    body_too_large,   // 413: Content-Length past max_body_bytes (the body is not read)
    length_required,  // 411: Transfer-Encoding where bodies are allowed: send Content-Length instead
  };

  /// `max_body_bytes` 0: no request may carry a body (what a WebSocket port wants).
  explicit HttpRequest(std::size_t max_head_bytes, std::size_t max_body_bytes = 0);
  ~HttpRequest();
  HttpRequest(const HttpRequest&) = delete;
  HttpRequest& operator=(const HttpRequest&) = delete;

  /// Parses more of the head, then reads the body. On complete, `consumed` is where the bytes after
  /// the request begin (the next pipelined request, or WebSocket frames); before it, every byte given
  /// was taken. `bad` for a malformed head, and for one RFC 9112 forbids even where parsers are
  /// lenient: bare LF line ends, obs-fold, whitespace before a colon, a second Host. Bodies:
  /// - with max_body_bytes 0, any body (Content-Length > 0, any Transfer-Encoding) is `bad`: nothing
  ///   served there has one, and an unread body would be taken for the next request (smuggling);
  /// - otherwise a Content-Length body up to max_body_bytes is read (`body_too_large` past it, before
  ///   a byte of it is read); Transfer-Encoding is `length_required` (chunked framing is more parser
  ///   to trust, and API clients all send Content-Length), or `bad` beside a Content-Length;
  /// - a GET or HEAD with a body is `bad` everywhere: proxies disagree on whether such a body exists.
  /// The verdict does not depend on how the bytes are split between calls.
  Status feed(std::span<const std::byte> data, std::size_t& consumed);
  /// The head is complete and its body is still being read (a client that sent Expect: 100-continue
  /// waits for a 100 before sending it).
  bool awaiting_body() const noexcept { return head_complete_ && !complete_; }

  std::string_view method() const noexcept { return method_; }
  std::string_view target() const noexcept { return target_; }
  std::string_view path() const noexcept { return std::string_view(target_).substr(0, target_.find('?')); }
  std::string_view query() const noexcept {
    auto q = target_.find('?');
    return q == std::string::npos ? std::string_view{} : std::string_view(target_).substr(q + 1);
  }
  bool http11() const noexcept { return http11_; }
  /// First value of a header, by case-insensitive name.
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  /// How many times header `name` appears (case-insensitive).
  std::size_t count_headers(std::string_view name) const noexcept;
  /// True when the comma-separated header `name` holds `token` (case-insensitive), e.g. Connection: upgrade.
  bool header_has_token(std::string_view name, std::string_view token) const noexcept;
  /// Every header in order, names as sent.
  const std::vector<std::pair<std::string, std::string>>& headers() const noexcept { return headers_; }
  /// The body (empty without one); complete once feed() said so.
  std::string_view body() const noexcept { return body_; }

 private:
  struct Parser;
  friend struct Parser;
  Status check_body() noexcept;
  std::unique_ptr<Parser> parser_;
  std::size_t max_head_bytes_;
  std::size_t max_body_bytes_;
  std::size_t seen_ = 0;
  std::size_t body_remaining_ = 0;  // bytes of the body still to read
  bool head_complete_ = false;
  bool complete_ = false;
  bool http11_ = false;
  bool in_value_ = false;
  std::string method_;
  std::string target_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
};

/// What a route answers. Content-Length, Server and Connection are added by the server.
struct FANOUT_API HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body{};
  std::string headers{};  // extra header lines, each ending in \r\n (e.g. "ETag: \"7\"\r\n")
};

/// An endpoint beside the WebSocket paths. `prefix`: also matches `path` followed by more (e.g.
/// "/topics/" serves "/topics/t/snapshot"). The first matching route in order answers; a method not in
/// `methods` gets 405 with an Allow header. HEAD is served wherever GET is (the GET's headers, no
/// body). A POST route reads a body only on a listener with Server::Options::max_request_body_bytes.
struct FANOUT_API HttpRoute {
  std::string path;
  bool prefix = false;
  std::function<HttpResponse(const HttpRequest&)> handler;
  std::vector<std::string> methods = {"GET"};  // e.g. {"POST"}, {"GET", "POST"}

  bool serves(std::string_view method) const noexcept;
};

namespace detail {
/// Decodes %XX and '+' in a URL query component. Returns nullopt on a malformed escape.
FANOUT_API std::optional<std::string> url_decode(std::string_view s);
/// The value of `key` in an `a=1&b=2` query string, decoded.
FANOUT_API std::optional<std::string> query_param(std::string_view query, std::string_view key);

}  // namespace detail
}  // namespace fanout

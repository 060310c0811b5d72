// fanout/http.hpp — plain HTTP on the WebSocket port: the request head (parsed strictly by
// nodejs/http-parser, plus the rules it lets through: no bare LF, no obs-fold, no whitespace before a
// colon, one Host, no body), and routes an application adds for its own GET endpoints.
//
//   options.http_routes.push_back({"/metrics", false, [&](const fanout::HttpRequest&) {
//     return fanout::HttpResponse{.content_type = "text/plain; version=0.0.4", .body = scrape()};
//   }});
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
  enum class Status { incomplete, complete, bad, too_large };

  explicit HttpRequest(std::size_t max_head_bytes);
  ~HttpRequest();
  HttpRequest(const HttpRequest&) = delete;
  HttpRequest& operator=(const HttpRequest&) = delete;

  /// Parses more of the head. On complete, `consumed` is where the bytes after the head begin.
  /// `bad` for a malformed head, and for one RFC 9112 forbids even where parsers are lenient: bare LF
  /// line ends, obs-fold, whitespace before a colon, a second Host, or a body (Content-Length > 0 or
  /// any Transfer-Encoding: no request served here has one). The verdict does not depend on how the
  /// bytes are split between calls.
  Status feed(std::span<const std::byte> data, std::size_t& consumed);

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

 private:
  struct Parser;
  friend struct Parser;
  bool announces_body() const noexcept;
  std::unique_ptr<Parser> parser_;
  std::size_t max_head_bytes_;
  std::size_t seen_ = 0;
  bool complete_ = false;
  bool http11_ = false;
  bool in_value_ = false;
  std::string method_;
  std::string target_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

/// What a route answers. Content-Length, Server and Connection are added by the server.
struct FANOUT_API HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body{};
  std::string headers{};  // extra header lines, each ending in \r\n (e.g. "ETag: \"7\"\r\n")
};

/// A GET (and HEAD) endpoint beside the WebSocket paths. `prefix`: also matches `path` followed by more
/// (e.g. "/topics/" serves "/topics/t/snapshot"). The first matching route in order answers.
struct FANOUT_API HttpRoute {
  std::string path;
  bool prefix = false;
  std::function<HttpResponse(const HttpRequest&)> handler;
};

namespace detail {
/// Decodes %XX and '+' in a URL query component. Returns nullopt on a malformed escape.
FANOUT_API std::optional<std::string> url_decode(std::string_view s);
/// The value of `key` in an `a=1&b=2` query string, decoded.
FANOUT_API std::optional<std::string> query_param(std::string_view query, std::string_view key);

}  // namespace detail
}  // namespace fanout

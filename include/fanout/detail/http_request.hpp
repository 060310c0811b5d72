// fanout/detail/http_request.hpp — the HTTP/1.1 request head, parsed strictly by nodejs/http-parser.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fanout::detail {

class HttpRequest {
 public:
  enum class Status { incomplete, complete, bad, too_large };

  explicit HttpRequest(std::size_t max_head_bytes);
  ~HttpRequest();
  HttpRequest(const HttpRequest&) = delete;
  HttpRequest& operator=(const HttpRequest&) = delete;

  /// Parses more of the head. On complete, `consumed` is where the bytes after the head begin.
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
  /// True when the comma-separated header `name` holds `token` (case-insensitive), e.g. Connection: upgrade.
  bool header_has_token(std::string_view name, std::string_view token) const noexcept;

 private:
  struct Parser;
  friend struct Parser;
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

/// Decodes %XX and '+' in a URL query component. Returns nullopt on a malformed escape.
std::optional<std::string> url_decode(std::string_view s);
/// The value of `key` in an `a=1&b=2` query string, decoded.
std::optional<std::string> query_param(std::string_view query, std::string_view key);

}  // namespace fanout::detail

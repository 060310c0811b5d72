#include "fanout/http.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cctype>
#include <climits>

namespace fanout {

namespace {
bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}
std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

struct HttpRequest::Parser {
  http_parser parser{};
  http_parser_settings settings{};
  HttpRequest* self = nullptr;

  static HttpRequest& req(http_parser* p) { return *static_cast<Parser*>(p->data)->self; }
};

HttpRequest::HttpRequest(std::size_t max_head_bytes) : parser_(new Parser), max_head_bytes_(max_head_bytes) {
  http_parser_init(&parser_->parser, HTTP_REQUEST);
  parser_->parser.data = parser_.get();
  parser_->self = this;
  auto& s = parser_->settings;
  s.on_url = [](http_parser* p, const char* at, std::size_t n) {
    Parser::req(p).target_.append(at, n);
    return 0;
  };
  s.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
    auto& r = Parser::req(p);
    if (r.headers_.empty() || r.in_value_) {
      r.headers_.emplace_back();
      r.in_value_ = false;
    }
    r.headers_.back().first.append(at, n);
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
    auto& r = Parser::req(p);
    r.in_value_ = true;
    r.headers_.back().second.append(at, n);
    return 0;
  };
  s.on_headers_complete = [](http_parser* p) {
    auto& r = Parser::req(p);
    r.complete_ = true;
    r.method_ = http_method_str(static_cast<http_method>(p->method));
    r.http11_ = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
    return 0;
  };
  // Stop at the end of the head: what follows belongs to the WebSocket (or is ignored).
  s.on_message_complete = [](http_parser* p) {
    http_parser_pause(p, 1);
    return 0;
  };
}

HttpRequest::~HttpRequest() = default;

HttpRequest::Status HttpRequest::feed(std::span<const std::byte> data, std::size_t& consumed) {
  consumed = 0;
  if (complete_) return Status::complete;
  // Only the head counts against the limit; refuse before parsing what cannot fit.
  const std::size_t room = max_head_bytes_ > seen_ ? max_head_bytes_ - seen_ : 0;
  const std::size_t n = std::min(room, data.size());
  const std::size_t parsed =
      http_parser_execute(&parser_->parser, &parser_->settings, reinterpret_cast<const char*>(data.data()), n);
  seen_ += parsed;
  const auto err = HTTP_PARSER_ERRNO(&parser_->parser);
  if (err != HPE_OK && err != HPE_PAUSED) return Status::bad;
  if (complete_) {
    if (parser_->parser.content_length > 0 && parser_->parser.content_length != ULLONG_MAX) return Status::bad;
    consumed = parsed;
    return Status::complete;
  }
  if (n < data.size() || seen_ >= max_head_bytes_) return Status::too_large;
  return Status::incomplete;
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const noexcept {
  for (const auto& [k, v] : headers_)
    if (iequals(k, name)) return trim(v);
  return std::nullopt;
}

bool HttpRequest::header_has_token(std::string_view name, std::string_view token) const noexcept {
  for (const auto& [k, v] : headers_) {
    if (!iequals(k, name)) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

namespace detail {
std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
        return std::nullopt;
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) return url_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace detail
}  // namespace fanout

#include "fanout/http.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>

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

/// Byte by byte, the rules http_parser lets through and RFC 9112 forbids: bare LF line ends (a
/// server must not treat them alike when a proxy in front does not), obs-fold (a continuation line
/// that starts with whitespace) and whitespace between a field name and its colon (request smuggling
/// through proxies that read either differently). Kept per byte so the verdict is the same however
/// TCP splits the head. Empty lines before the request line are tolerated, as RFC 9112 2.2 allows.
class HeadScan {
 public:
  /// False once the head broke a rule; scanning stops at the empty line that ends the head.
  bool feed(std::span<const std::byte> data) noexcept {
    for (auto b : data) {
      if (done_) return true;
      if (!step(static_cast<char>(b))) return false;
    }
    return true;
  }

 private:
  bool step(char c) noexcept {
    if (at_ == At::cr) {
      if (c != '\n') return false;
      if (line_len_ == 0 && headers_)
        done_ = true;  // the empty line: the head is over
      else if (line_len_ > 0)
        headers_ = true;  // the request line, or a field line, is over
      at_ = At::line_start;
      line_len_ = 0;
      return true;
    }
    if (c == '\r') {
      at_ = At::cr;
      return true;
    }
    if (c == '\n') return false;  // bare LF
    ++line_len_;
    switch (at_) {
      case At::line_start:
        if (headers_ && (c == ' ' || c == '\t')) return false;  // obs-fold
        at_ = headers_ ? At::name : At::rest;
        return !(headers_ && c == ':');
      case At::name:
        if (c == ' ' || c == '\t') return false;  // whitespace in the name or before the colon
        if (c == ':') at_ = At::rest;
        return true;
      case At::rest:
      case At::cr: return true;
    }
    return true;
  }

  enum class At : std::uint8_t { line_start, name, rest, cr };
  At at_ = At::line_start;
  bool headers_ = false;  // past the request line
  bool done_ = false;
  std::size_t line_len_ = 0;
};

struct HttpRequest::Parser {
  http_parser parser{};
  http_parser_settings settings{};
  HttpRequest* self = nullptr;
  HeadScan scan;

  static HttpRequest& req(http_parser* p) { return *static_cast<Parser*>(p->data)->self; }
};

HttpRequest::HttpRequest(std::size_t max_head_bytes, std::size_t max_body_bytes)
    : parser_(new Parser), max_head_bytes_(max_head_bytes), max_body_bytes_(max_body_bytes) {
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
    r.head_complete_ = true;
    r.method_ = http_method_str(static_cast<http_method>(p->method));
    r.http11_ = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
    // 1: the parser stops at the head; feed() reads the body itself (by Content-Length, the only
    // framing accepted), so a body is never parsed as the next request, whatever the segmentation.
    return 1;
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
  std::size_t used = 0;
  if (!head_complete_) {
    // Only the head counts against the limit; refuse before parsing what cannot fit.
    const std::size_t room = max_head_bytes_ > seen_ ? max_head_bytes_ - seen_ : 0;
    const std::size_t n = std::min(room, data.size());
    if (!parser_->scan.feed(data.first(n))) return Status::bad;
    const std::size_t parsed =
        http_parser_execute(&parser_->parser, &parser_->settings, reinterpret_cast<const char*>(data.data()), n);
    seen_ += parsed;
    const auto err = HTTP_PARSER_ERRNO(&parser_->parser);
    if (err != HPE_OK && err != HPE_PAUSED) return Status::bad;
    if (!head_complete_) return n < data.size() || seen_ >= max_head_bytes_ ? Status::too_large : Status::incomplete;
    if (count_headers("Host") > 1) return Status::bad;
    if (const auto verdict = check_body(); verdict != Status::incomplete) return verdict;
    used = parsed;
  }
  const std::size_t take = std::min(body_remaining_, data.size() - used);
  body_.append(reinterpret_cast<const char*>(data.data()) + used, take);
  body_remaining_ -= take;
  if (body_remaining_ > 0) return Status::incomplete;  // every byte given was body
  complete_ = true;
  consumed = used + take;
  return Status::complete;
}

HttpRequest::Status HttpRequest::check_body() noexcept {
  const auto& p = parser_->parser;
  const bool has_length = p.content_length != ULLONG_MAX;  // http_parser refuses two different lengths
  const bool chunked = count_headers("Transfer-Encoding") > 0;
  const std::uint64_t length = has_length ? p.content_length : 0;
  if (!chunked && length == 0) return Status::incomplete;  // no body: complete once feed() says so
  // Where no body is served (a WebSocket port), refusing one is all the framing needed.
  if (max_body_bytes_ == 0) return Status::bad;
  // A GET or HEAD body: some proxies ignore it and would forward it as the next request.
  if (method_ == "GET" || method_ == "HEAD") return Status::bad;
  if (chunked) return has_length ? Status::bad : Status::length_required;  // both: RFC 9112 6.1, smuggling
  if (length > max_body_bytes_) return Status::body_too_large;
  body_remaining_ = static_cast<std::size_t>(length);
  // Grown as bytes come: a client that announces a large body and sends nothing holds little.
  body_.reserve(std::min<std::size_t>(body_remaining_, 16 * 1024));
  return Status::incomplete;
}

std::size_t HttpRequest::count_headers(std::string_view name) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(headers_.begin(), headers_.end(), [&](const auto& h) { return iequals(h.first, name); }));
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

bool HttpRoute::serves(std::string_view method) const noexcept {
  const auto has = [&](std::string_view m) { return std::find(methods.begin(), methods.end(), m) != methods.end(); };
  return has(method) || (method == "HEAD" && has("GET"));
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

#include "fanout/detail/handshake_reader.hpp"

#include <algorithm>

#include "fanout/detail/websocket_key.hpp"

namespace fanout::detail {

namespace {
constexpr std::string_view k_upgrade_headers = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";

HandshakeReader::Decision refuse(int status, std::string_view reason, std::string_view extra_headers,
                                 std::string_view body) {
  return {.kind = HandshakeReader::Kind::answer,
          .answer = {.status = status, .reason = reason, .extra_headers = extra_headers, .body = body}};
}
}  // namespace

HandshakeReader::HandshakeReader(std::size_t max_head_bytes, std::size_t max_body_bytes,
                                 std::span<const std::string> websocket_paths) noexcept
    : max_head_bytes_(max_head_bytes), max_body_bytes_(max_body_bytes), paths_(websocket_paths) {}

HandshakeReader::~HandshakeReader() = default;

void HandshakeReader::release() noexcept {
  request_.reset();
  decided_ = false;
}

HandshakeReader::Decision HandshakeReader::feed(std::span<const std::byte> data) {
  if (decided_ || !request_) {
    request_ = std::make_unique<HttpRequest>(max_head_bytes_, max_body_bytes_);
    decided_ = false;
    continue_sent_ = false;
  }
  std::size_t consumed = 0;
  switch (request_->feed(data, consumed)) {
    case HttpRequest::Status::incomplete: {
      // curl and PHP's curl wait (a second) for this before sending a body over 1 KiB.
      Decision d;
      if (request_->awaiting_body() && !continue_sent_ && request_->header_has_token("Expect", "100-continue") &&
          request_->http11())
        d.send_continue = continue_sent_ = true;
      return d;
    }
    case HttpRequest::Status::bad: decided_ = true; return refuse(400, "Bad Request", {}, "malformed HTTP request\n");
    case HttpRequest::Status::too_large:
      decided_ = true;
      return refuse(431, "Request Header Fields Too Large", {}, "request head too large\n");
    case HttpRequest::Status::body_too_large:
      decided_ = true;
      return refuse(413, "Content Too Large", {}, "request body too large\n");
    case HttpRequest::Status::length_required:
      decided_ = true;
      return refuse(411, "Length Required", {}, "send the body with Content-Length (no Transfer-Encoding)\n");
    case HttpRequest::Status::complete: break;
  }
  decided_ = true;
  return decide(consumed);
}

HandshakeReader::Decision HandshakeReader::decide(std::size_t consumed) const {
  const auto& req = *request_;
  if (std::find(paths_.begin(), paths_.end(), req.path()) == paths_.end())
    return {.kind = Kind::plain, .consumed = consumed};
  if (req.method() != "GET") return refuse(405, "Method Not Allowed", "Allow: GET\r\n", "method not allowed\n");
  if (!req.http11() || !req.header("Host"))
    return refuse(400, "Bad Request", {}, "HTTP/1.1 with a Host header required\n");
  if (!req.header_has_token("Upgrade", "websocket") || !req.header_has_token("Connection", "upgrade"))
    return refuse(426, "Upgrade Required", k_upgrade_headers, "this path speaks WebSocket\n");
  if (req.header("Sec-WebSocket-Version").value_or("") != "13")
    return refuse(426, "Upgrade Required", k_upgrade_headers, "unsupported Sec-WebSocket-Version (13 expected)\n");
  const auto key = req.header("Sec-WebSocket-Key");
  if (!key || !valid_websocket_key(*key))
    return refuse(400, "Bad Request", {}, "missing or invalid Sec-WebSocket-Key\n");
  return {.kind = Kind::upgrade, .consumed = consumed};
}

}  // namespace fanout::detail

// The HTTP side of a session: what the HandshakeReader decided, acted on (answers, routes, the upgrade).
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "fanout/detail/connection_limits.hpp"
#include "fanout/detail/gateway_hooks.hpp"
#include "fanout/detail/handshake.hpp"
#include "fanout/detail/handshake_reader.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/permessage_deflate.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_app.hpp"   // Session::Custom owns one
#include "fanout/detail/session_auth.hpp"  // Session::Custom owns one
#include "fanout/detail/shard.hpp"
#include "fanout/detail/websocket_key.hpp"
#include "fanout/http.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

namespace fanout {

bool Session::take_proxy_header(std::span<const std::byte>& data) {
  if (!custom_) custom_ = std::make_unique<Custom>();
  auto& buf = custom_->proxy_header;
  const std::size_t before = buf.size();
  const std::size_t take = std::min(data.size(), detail::k_max_proxy_header - before);
  buf.append(reinterpret_cast<const char*>(data.data()), take);
  const auto h = detail::parse_proxy_header(std::as_bytes(std::span(buf)));
  if (h.status == detail::ProxyHeader::Status::need_more && buf.size() < detail::k_max_proxy_header) {
    data = {};
    return false;
  }
  proxy_pending_ = false;
  if (h.status != detail::ProxyHeader::Status::ok) {
    std::string().swap(buf);
    answer_http(400, "Bad Request", {}, "bad PROXY protocol header\n");
    return false;
  }
  data = data.subspan(h.consumed - before);
  std::string().swap(buf);
  if (h.source) remote_ = *h.source;
  admit(h.source.has_value());  // LOCAL / UNKNOWN: the proxy's own check, only the total applies
  return true;
}

void Session::answer_refusal() {
  auto& a = *owner_.admission;
  switch (static_cast<detail::Refusal>(refusal_)) {
    case detail::Refusal::total: detail::ShardCounters::add(owner_.refused_total, 1); break;
    case detail::Refusal::per_ip: detail::ShardCounters::add(owner_.refused_per_ip, 1); break;
    case detail::Refusal::rate: detail::ShardCounters::add(owner_.refused_rate, 1); break;
    case detail::Refusal::none: return;
  }
  // Capacity (connections in total or per IP) is 503; the handshake rate is a rate limit: 429.
  const bool rate = static_cast<detail::Refusal>(refusal_) == detail::Refusal::rate;
  answer_http(rate ? 429 : 503, rate ? "Too Many Requests" : "Service Unavailable",
              fmt::format("Retry-After: {}\r\n", a.jittered_retry_after()),
              rate ? "too many new connections, retry later\n" : "connection limit reached, retry later\n");
}

bool Session::on_handshake_bytes(std::span<const std::byte> data) {
  if (close_after_flush_) return true;  // answered already; ignore the rest
  if (connect_pending_) {
    // Reading stopped for on_connect's decision; a transport may still hand over what it had.
    auto& held = app_state().held;
    if (held.size() + data.size() > owner_.options().max_request_head_bytes) {
      connect_pending_ = false;
      std::string().swap(held);
      answer_http(400, "Bad Request", {}, "too much data before the upgrade was answered\n");
      return true;
    }
    held.append(reinterpret_cast<const char*>(data.data()), data.size());
    return true;
  }
  if (proxy_pending_ && !take_proxy_header(data)) return state_ != State::closed;
  if (data.empty()) return true;
  const auto& options = owner_.options();
  if (!handshake_)
    handshake_ = std::make_unique<detail::HandshakeReader>(options.max_request_head_bytes,
                                                           options.max_request_body_bytes, owner_.paths);
  const auto decision = handshake_->feed(data);
  switch (decision.kind) {
    case detail::HandshakeReader::Kind::need_more:
      if (decision.send_continue) {
        constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";
        queue_.push_control(Frame::make_raw(std::as_bytes(std::span(k_continue))));
        schedule_flush();
      }
      return true;
    case detail::HandshakeReader::Kind::answer: {
      const auto& a = decision.answer;
      answer_http(a.status, a.reason, a.extra_headers, a.body);
      return true;
    }
    case detail::HandshakeReader::Kind::plain:
      if (admit_by_head(handshake_->request())) return true;
      answer_plain_http(handshake_->request());
      if (close_after_flush_ || decision.consumed >= data.size()) return true;
      // Keep-alive: a pipelined request may follow in the same bytes.
      return on_handshake_bytes(data.subspan(decision.consumed));
    case detail::HandshakeReader::Kind::upgrade:
      if (admit_by_head(handshake_->request())) return true;
      break;
  }
  if (!admit(handshake_->request())) return true;  // Origin or token refused: 403/401 answered
  if (owner_.server.callbacks().on_connect) {
    // The application decides; the upgrade and what came behind the head wait (session_connect.cpp).
    begin_connect(handshake_->request(), data.subspan(decision.consumed));
    return state_ != State::closed;
  }
  accept_websocket(handshake_->request());
  handshake_.reset();
  // Frames the client sent right behind its head.
  if (decision.consumed < data.size() && state_ == State::open) return on_ws_bytes(data.subspan(decision.consumed));
  return state_ != State::closed;
}

bool Session::admit_by_head(const HttpRequest& req) {
  if (admit_at_head_) {
    admit_at_head_ = false;
    std::optional<asio::ip::address> client;
    if (const auto xff = req.header("X-Forwarded-For"))
      client = detail::client_from_forwarded_for(*xff, owner_.networks().trusted_proxies);
    if (client) remote_ = asio::ip::tcp::endpoint(*client, 0);
    admit(client.has_value());
  }
  if (refusal_ == 0) return false;
  answer_refusal();
  return true;
}

namespace {
/// 405's Allow: the route's methods, HEAD wherever GET is.
std::string allow_header(const HttpRoute* route) {
  if (!route) return "Allow: GET, HEAD\r\n";
  std::string allow;
  for (const auto& m : route->methods) {
    allow += allow.empty() ? "Allow: " : ", ";
    allow += m;
    if (m == "GET" && std::find(route->methods.begin(), route->methods.end(), "HEAD") == route->methods.end())
      allow += ", HEAD";
  }
  return allow.empty() ? std::string() : allow + "\r\n";
}
}  // namespace

void Session::answer_plain_http(const HttpRequest& req) {
  const auto& options = owner_.options();
  // Keep-alive for HTTP/1.1 unless the client says close; responses waiting in the queue are bounded,
  // so a client that pipelines without reading is refused rather than served without limit.
  ++http_requests_;
  const bool keep_alive = req.http11() && !req.header_has_token("Connection", "close") &&
                          http_requests_ < options.max_http_requests_per_connection;
  if (queue_.frames() >= options.max_http_pipeline) {
    answer_http(429, "Too Many Requests", {}, "too many pipelined requests\n");
    return;
  }
  const auto path = req.path();
  const HttpRoute* route = nullptr;
  for (const auto& r : options.http_routes)
    if (r.prefix ? path.starts_with(r.path) : path == r.path) {
      route = &r;
      break;
    }
  if (!route && path != "/healthz") {
    answer_http(404, "Not Found", {}, "not found\n", "text/plain", false, keep_alive);
    return;
  }
  if (route ? !route->serves(req.method()) : req.method() != "GET" && req.method() != "HEAD") {
    answer_http(405, "Method Not Allowed", allow_header(route), "method not allowed\n");
    return;
  }
  HttpResponse res{.body = "ok\n"};
  if (route) {
    try {
      res = route->handler(req);
    } catch (const std::exception& e) {
      res = HttpResponse{.status = 500, .body = fmt::format("internal error: {}\n", e.what())};
    }
  }
  answer_http(res.status, detail::http_reason(res.status), res.headers, res.body, res.content_type,
              req.method() == "HEAD", keep_alive && res.status < 500);
  // Keep-alive: the next request head has handshake_timeout of its own from now.
  state_since_ = std::chrono::steady_clock::now();
}

void Session::answer_http(int status, std::string_view reason, std::string_view extra_headers, std::string_view body,
                          std::string_view content_type, bool head_only, bool keep_alive) {
  if (status >= 400) detail::ShardCounters::add(owner_.rejected, 1);
  auto text = detail::http_response(status, reason, extra_headers, content_type, body, keep_alive);
  if (head_only) text.resize(text.size() - body.size());  // HEAD: the GET's headers, no body
  queue_.push_control(Frame::make_raw(std::as_bytes(std::span(text))));
  if (!keep_alive) close_after_flush_ = true;
  if (handshake_) handshake_->release();
  schedule_flush();
}

namespace {
/// Every Sec-WebSocket-Extensions value, joined as one list (a client may send the header twice).
std::string offered_extensions(const HttpRequest& req) {
  std::string all;
  constexpr std::string_view k_name = "sec-websocket-extensions";
  const auto same = [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; };
  for (const auto& [name, value] : req.headers())
    if (std::ranges::equal(name, k_name, same)) (all += all.empty() ? "" : ",") += value;
  return all;
}
}  // namespace

void Session::accept_websocket(const HttpRequest& req, std::span<const std::string> app_topics) {
  if (owner_.gateway && !owner_.gateway->may_open(*this)) {
    // The user's connections are at the gateway's max_connections_per_user: capacity, so 503.
    answer_http(503, "Service Unavailable",
                fmt::format("Retry-After: {}\r\n", owner_.admission->jittered_retry_after()),
                "too many connections for this user, retry later\n");
    return;
  }
  const auto accept = detail::websocket_accept(*req.header("Sec-WebSocket-Key"));
  // A browser that offers subprotocols (e.g. "fanout.v1" beside "bearer.<token>", auth.hpp) fails the
  // connection unless one is echoed.
  const bool protocol = req.header_has_token("Sec-WebSocket-Protocol", "fanout.v1");
  const std::string extensions =
      options_.permessage_deflate ? detail::negotiate_permessage_deflate(offered_extensions(req)) : std::string();
  deflate_ = !extensions.empty();
  const auto head = fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
      "{}\r\n{}{}{}{}\r\n",
      accept, protocol ? "Sec-WebSocket-Protocol: fanout.v1\r\n" : "", deflate_ ? "Sec-WebSocket-Extensions: " : "",
      extensions, deflate_ ? "\r\n" : "");
  queue_.push_control(Frame::make_raw(std::as_bytes(std::span(head))));
  state_ = State::open;
  state_since_ = std::chrono::steady_clock::now();  // subscribe_timeout counts from here
  detail::ShardCounters::add(owner_.upgraded, 1);
  const auto& envelope_paths = owner_.options().envelope_paths;
  const auto wants = detail::query_param(req.query(), "envelope");
  envelope_ = wants ? (*wants == "1" || *wants == "true")
                    : std::find(envelope_paths.begin(), envelope_paths.end(), req.path()) != envelope_paths.end();
  schedule_flush();
  // Registered before its first subscription, so the gateway sees every topic it joins.
  if (owner_.gateway) owner_.gateway->opened(*this);
  // on_connect's topics, on the application's authority (no acks: the application told the client).
  for (const auto& t : app_topics)
    if (state_ == State::open) subscribe(t);
  // A client that still owes its auth message joins these once it authenticates (session_auth.cpp).
  if (auto topics = detail::query_param(req.query(), "subscribe"); topics && !auth_pending()) {
    const std::string throttle = url_subscribe_options(req);
    std::string_view rest = *topics;
    while (!rest.empty() && state_ == State::open) {
      const auto comma = rest.find(',');
      const auto t = rest.substr(0, comma);
      if (!t.empty()) {
        // Same path as a JSON subscribe, so the client gets the same acks and errors.
        on_control(fmt::format(R"({{"op":"subscribe","args":[{}]{}}})", detail::json_string(t), throttle));
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (owner_.server.callbacks().on_open) owner_.server.callbacks().on_open(*this);
}

// ?interval_ms=N throttles the URL's topics (docs/protocol.md); anything but digits goes to the parser
// as a string, which answers 4002, so nothing of the URL is ever spliced into the JSON unquoted.
std::string Session::url_subscribe_options(const HttpRequest& req) {
  const auto interval = detail::query_param(req.query(), "interval_ms");
  if (!interval) return {};
  const bool digits = !interval->empty() && interval->size() <= 12 &&
                      std::all_of(interval->begin(), interval->end(), [](char c) { return c >= '0' && c <= '9'; });
  return fmt::format(R"(,"interval_ms":{})", digits ? *interval : detail::json_string(*interval));
}

}  // namespace fanout

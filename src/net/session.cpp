#include "fanout/session.hpp"

#include <wslay/wslay.h>
#include <simdjson.h>

#include <asio/post.hpp>
#include <atomic>
#include <cstring>
#include <fmt/format.h>

#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/handshake.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/websocket_key.hpp"
#include "fanout/http.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/hub.hpp"
#include "fanout/server.hpp"

namespace fanout {

namespace {
std::atomic<std::uint64_t> next_session_id{1};
constexpr std::uint8_t k_quiet_ticks_before_shrink = 40;  // 10 s at the default 250 ms tick

/// Follows client frame boundaries in the byte stream, so the wslay context can be freed whenever
/// no frame or fragmented message is half-received: an idle connection then holds no parser state
/// (wslay's context carries a 4 KiB input buffer, eight times our per-connection budget).
struct FrameBoundary {
  std::uint8_t header[14];
  std::uint8_t header_len = 0;
  std::uint64_t payload_left = 0;
  bool message_open = false;  // a fragmented data message awaits its continuation frames

  void feed(const std::byte* p, std::size_t n) noexcept {
    while (n > 0) {
      if (payload_left > 0) {
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left, n));
        payload_left -= k;
        p += k;
        n -= k;
        continue;
      }
      header[header_len++] = static_cast<std::uint8_t>(*p++);
      --n;
      if (header_len < 2) continue;
      const std::uint8_t len7 = header[1] & 0x7F;
      const std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header[1] & 0x80) ? 4 : 0);
      if (header_len < need) continue;
      std::uint64_t len = len7;
      if (len7 == 126) len = (std::uint64_t{header[2]} << 8) | header[3];
      if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | header[2 + i];
      }
      const bool fin = header[0] & 0x80;
      const std::uint8_t opcode = header[0] & 0x0F;
      if (opcode == 0x1 || opcode == 0x2)
        message_open = !fin;
      else if (opcode == 0x0 && fin)
        message_open = false;
      payload_left = len;
      header_len = 0;
    }
  }
  bool idle() const noexcept { return header_len == 0 && payload_left == 0 && !message_open; }
};
}  // namespace

struct Session::WsState {
  wslay_event_context* ctx = nullptr;
  const std::byte* in = nullptr;
  std::size_t in_left = 0;
  std::string out;  // what wslay wants sent (pongs, close replies)
  // Messages completed during one wslay_event_recv, handled after it so replies keep arrival order
  // with wslay's own answers (a ping's pong goes out before the reply to a later text message).
  std::vector<std::pair<Opcode, std::string>> messages;
  bool protocol_error = false;  // something wslay lets through that RFC 6455 forbids
  FrameBoundary boundary;
  ~WsState() {
    if (ctx) wslay_event_context_free(ctx);
  }
};

Session::Session(detail::ServerShard& owner, asio::ip::tcp::endpoint remote)
    : owner_(owner),
      shard_(owner.shard),
      hub_(owner.server.hub()),
      options_(owner.server.options().session),
      last_read_(std::chrono::steady_clock::now()),
      id_(next_session_id.fetch_add(1, std::memory_order_relaxed)),
      remote_(std::move(remote)) {}

Session::~Session() = default;

std::size_t Session::shard() const noexcept { return shard_.index(); }

void Session::set_group_index(const detail::Topic* t, std::size_t i) noexcept {
  for (auto& s : subs_)
    if (s.topic.get() == t) {
      s.index = i;
      return;
    }
}

void Session::set_policy(std::shared_ptr<BackpressurePolicy> policy) {
  if (!custom_) custom_ = std::make_unique<Custom>();
  custom_->policy = std::move(policy);
}

std::any& Session::user_data() {
  if (!custom_) custom_ = std::make_unique<Custom>();
  return custom_->user_data;
}

const std::any& Session::user_data() const noexcept {
  static const std::any none;
  return custom_ ? custom_->user_data : none;
}

// ---------------------------------------------------------------- outbound

void Session::deliver(FrameRef frame, const detail::Topic& topic, BackpressureCounters& counters) {
  if (!enqueue(std::move(frame), topic, counters)) return;
  // A full batch goes out now, so a burst does not wait for the end of the loop turn (and fill the
  // queue to its limit) before the first byte is written.
  if (queue_.bytes() >= options_.max_write_bytes && !waiting_writable_)
    flush();
  else
    schedule_flush();
}

bool Session::enqueue(FrameRef frame, const detail::Topic& topic, BackpressureCounters& counters) {
  if (state_ != State::open) return false;
  delivered_since_tick_ = true;
  const OverflowContext context{.topic = topic.name,
                                .topic_id = topic.id,
                                .key_hash = frame->key_hash(),
                                .session = this,
                                .limits = options_.queue,
                                .counters = counters};
  switch (queue_.push(std::move(frame), context, policy())) {
    case OutboundQueue::Result::queued: return true;
    case OutboundQueue::Result::dropped: return false;
    case OutboundQueue::Result::disconnect: close(CloseCode::policy_violation, "slow consumer"); return false;
  }
  return false;
}

void Session::pull(detail::Topic& topic, detail::Group& group, std::size_t i, BackpressureCounters& counters) {
  const auto frames = group.after(group.cursor[i]);
  if (!frames.empty()) {
    group.cursor[i] = frames.back().frame->seq();
    for (const auto& p : frames) enqueue(envelope_ && p.envelope ? p.envelope : p.frame, topic, counters);
    detail::ShardCounters::add(shard_.counters.deliveries, frames.size());
  }
  if (group.flagged[i]) {
    --pulls_due_;
    group.unflag(i);  // after the loop above: it may empty the log
  }
}

void Session::pull_due() {
  if (pulls_due_ == 0) return;
  BackpressureCounters counters;
  for (const auto& sub : subs_) {
    auto& group = sub.topic->groups[shard_.index()];
    if (group.flagged[sub.index]) Session::pull(*sub.topic, group, sub.index, counters);  // not virtual
  }
  shard_.add_counters(counters);
}

void Session::schedule_flush() {
  if (dirty_ || waiting_writable_ || state_ == State::closed) return;
  dirty_ = true;
  shard_.mark_dirty(this);
}

void Session::send(std::string_view payload, Opcode op) {
  if (state_ != State::open) return;
  queue_.push_control(Frame::make(op, payload));
  schedule_flush();
}

void Session::reply_event(std::string_view json) { send(json); }

void Session::reply_error(int code, std::string_view msg) {
  send(fmt::format(R"({{"event":"error","code":{},"msg":{}}})", code, detail::json_string(msg)));
}

void Session::close(CloseCode code, std::string_view reason) {
  if (state_ != State::open) return;
  // What was published before the close goes out before the close frame, as if it had been queued.
  if (code != CloseCode::policy_violation) pull_due();
  if (state_ != State::open) return;  // the pull met a full queue and the policy disconnected
  state_ = State::closing;
  closing_since_ = std::chrono::steady_clock::now();
  if (code == CloseCode::policy_violation) {
    // The client is not reading: what is queued would hold the close frame back for good.
    queue_.clear_unsent();
  }
  queue_.push_control(Frame::make_close(static_cast<std::uint16_t>(code), reason));
  close_after_flush_ = true;
  schedule_flush();
}

void Session::on_written(std::size_t n) {
  queue_.consume(n);
  if (queue_.empty() && close_after_flush_) {
    if (state_ == State::handshake || close_received_) {
      finish();
    } else {
      // Our close frame is out; the peer's reply (or close_timeout) ends the session.
      shutdown_send();
    }
  }
}

// ---------------------------------------------------------------- inbound

bool Session::on_bytes(std::span<const std::byte> data) {
  last_read_ = std::chrono::steady_clock::now();
  ping_outstanding_ = false;
  if (state_ == State::handshake) return on_handshake_bytes(data);
  if (state_ == State::open || (state_ == State::closing && !close_received_)) return on_ws_bytes(data);
  return state_ != State::closed;
}

void Session::on_read_end() {
  // The peer is gone (or half-closed after our close frame): nothing more can be delivered.
  finish();
}

bool Session::on_handshake_bytes(std::span<const std::byte> data) {
  if (close_after_flush_) return true;  // answered already; ignore the rest
  if (!request_) request_ = std::make_unique<HttpRequest>(owner_.server.options().max_request_head_bytes);
  std::size_t consumed = 0;
  switch (request_->feed(data, consumed)) {
    case HttpRequest::Status::incomplete: return true;
    case HttpRequest::Status::bad: answer_http(400, "Bad Request", {}, "malformed HTTP request\n"); return true;
    case HttpRequest::Status::too_large:
      answer_http(431, "Request Header Fields Too Large", {}, "request head too large\n");
      return true;
    case HttpRequest::Status::complete: break;
  }
  const auto& req = *request_;
  const auto path = req.path();
  const auto& paths = owner_.server.options().paths;
  const bool ws_path = std::find(paths.begin(), paths.end(), path) != paths.end();
  if (!ws_path) {
    answer_plain_http(req);
    if (close_after_flush_ || consumed >= data.size()) return true;
    // Keep-alive: a pipelined request may follow in the same bytes.
    return on_handshake_bytes(data.subspan(consumed));
  }
  if (req.method() != "GET") {
    answer_http(405, "Method Not Allowed", "Allow: GET\r\n", "method not allowed\n");
    return true;
  }
  if (!req.http11() || !req.header("Host")) {
    answer_http(400, "Bad Request", {}, "HTTP/1.1 with a Host header required\n");
    return true;
  }
  if (!req.header_has_token("Upgrade", "websocket") || !req.header_has_token("Connection", "upgrade")) {
    answer_http(426, "Upgrade Required", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                "this path speaks WebSocket\n");
    return true;
  }
  if (req.header("Sec-WebSocket-Version").value_or("") != "13") {
    answer_http(426, "Upgrade Required", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
                "unsupported Sec-WebSocket-Version (13 expected)\n");
    return true;
  }
  const auto key = req.header("Sec-WebSocket-Key");
  if (!key || !detail::valid_websocket_key(*key)) {
    answer_http(400, "Bad Request", {}, "missing or invalid Sec-WebSocket-Key\n");
    return true;
  }
  accept_websocket(req);
  request_.reset();
  // Frames the client sent right behind its head.
  if (consumed < data.size() && state_ == State::open) return on_ws_bytes(data.subspan(consumed));
  return state_ != State::closed;
}

void Session::answer_plain_http(const HttpRequest& req) {
  const auto& options = owner_.server.options();
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
  if (req.method() != "GET" && req.method() != "HEAD") {
    answer_http(405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "method not allowed\n");
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
}

void Session::answer_http(int status, std::string_view reason, std::string_view extra_headers, std::string_view body,
                          std::string_view content_type, bool head_only, bool keep_alive) {
  if (status >= 400) detail::ShardCounters::add(owner_.rejected, 1);
  auto text = detail::http_response(status, reason, extra_headers, content_type, body, keep_alive);
  if (head_only) text.resize(text.size() - body.size());  // HEAD: the GET's headers, no body
  queue_.push_control(Frame::make_raw(std::as_bytes(std::span(text))));
  if (!keep_alive) close_after_flush_ = true;
  request_.reset();
  schedule_flush();
}

void Session::accept_websocket(const HttpRequest& req) {
  const auto accept = detail::websocket_accept(*req.header("Sec-WebSocket-Key"));
  const auto head = fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
      "{}\r\n\r\n",
      accept);
  queue_.push_control(Frame::make_raw(std::as_bytes(std::span(head))));
  state_ = State::open;
  detail::ShardCounters::add(owner_.upgraded, 1);
  const auto& envelope_paths = owner_.server.options().envelope_paths;
  const auto wants = detail::query_param(req.query(), "envelope");
  envelope_ = wants ? (*wants == "1" || *wants == "true")
                    : std::find(envelope_paths.begin(), envelope_paths.end(), req.path()) != envelope_paths.end();
  schedule_flush();
  if (auto topics = detail::query_param(req.query(), "subscribe")) {
    std::string_view rest = *topics;
    while (!rest.empty() && state_ == State::open) {
      const auto comma = rest.find(',');
      const auto t = rest.substr(0, comma);
      if (!t.empty()) {
        // Same path as a JSON subscribe, so the client gets the same acks and errors.
        on_control(fmt::format(R"({{"op":"subscribe","args":[{}]}})", detail::json_string(t)));
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (owner_.server.callbacks().on_open) owner_.server.callbacks().on_open(*this);
}

bool Session::on_ws_bytes(std::span<const std::byte> data) {
  if (!ws_) {
    ws_ = std::make_unique<WsState>();
    static constexpr wslay_event_callbacks callbacks{
        [](wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) -> ssize_t {
          auto& ws = *static_cast<Session*>(user)->ws_;
          if (ws.in_left == 0) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
          }
          const std::size_t n = std::min(len, ws.in_left);
          std::memcpy(buf, ws.in, n);
          ws.in += n;
          ws.in_left -= n;
          return static_cast<ssize_t>(n);
        },
        [](wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) -> ssize_t {
          static_cast<Session*>(user)->ws_->out.append(reinterpret_cast<const char*>(data), len);
          return static_cast<ssize_t>(len);
        },
        nullptr,
        nullptr,
        nullptr,
        nullptr,
        [](wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
          auto& ws = *static_cast<Session*>(user)->ws_;
          const auto op = static_cast<Opcode>(arg->opcode);
          // A close payload of one byte cannot hold a status code (RFC 6455 5.5.1).
          if (op == Opcode::close && arg->msg_length == 1) ws.protocol_error = true;
          if (op == Opcode::text || op == Opcode::binary || op == Opcode::close)
            ws.messages.emplace_back(op, std::string(reinterpret_cast<const char*>(arg->msg), arg->msg_length));
        },
    };
    if (wslay_event_context_server_init(&ws_->ctx, &callbacks, this) != 0) throw std::bad_alloc();
    wslay_event_config_set_max_recv_msg_length(ws_->ctx, options_.max_message_bytes);
  }
  ws_->in = data.data();
  ws_->in_left = data.size();
  ws_->boundary.feed(data.data(), data.size());
  const int rv = wslay_event_recv(ws_->ctx);
  if (state_ == State::closed) return false;
  if (rv != 0 || ws_->protocol_error) {
    // A framing error wslay reports without a status code (fragmented or oversized control frame,
    // bad opcode sequence): answer 1002 ourselves instead of its empty close frame.
    ws_.reset();
    close_received_ = true;  // nothing more will be read; do not wait for the peer's reply
    fail(CloseCode::protocol_error, "protocol error");
    return state_ != State::closed;
  }
  // Whatever wslay answered (pong, close with 1002/1007/1009, the echo of the client's close),
  // unless our own close frame is already queued: after it nothing may follow.
  if (wslay_event_want_write(ws_->ctx)) {
    wslay_event_send(ws_->ctx);
    if (state_ == State::closing && close_after_flush_) ws_->out.clear();
    if (!ws_->out.empty()) {
      queue_.push_control(Frame::make_raw(std::as_bytes(std::span(ws_->out))));
      ws_->out.clear();
      schedule_flush();
    }
  }
  auto messages = std::move(ws_->messages);
  ws_->messages.clear();
  for (auto& [op, payload] : messages) on_message(op, payload);
  if (state_ == State::closed) return false;
  if (!ws_) return true;  // on_message failed the connection
  if (wslay_event_get_close_received(ws_->ctx)) close_received_ = true;
  if (wslay_event_get_close_sent(ws_->ctx) || !wslay_event_get_read_enabled(ws_->ctx)) {
    // wslay failed the connection (its close frame is queued) or answered the client's close.
    if (state_ == State::open) {
      state_ = State::closing;
      closing_since_ = std::chrono::steady_clock::now();
    }
    close_after_flush_ = true;
    close_received_ = true;  // reading is over either way
    ws_.reset();
    if (queue_.empty()) finish();
    return state_ != State::closed;
  }
  if (ws_->boundary.idle()) ws_.reset();
  return true;
}

void Session::fail(CloseCode code, std::string_view reason) {
  if (state_ == State::open) {
    close(code, reason);
  } else if (state_ == State::closing && !close_after_flush_) {
    close_after_flush_ = true;
  }
}

void Session::on_message(Opcode op, std::string_view payload) {
  switch (op) {
    case Opcode::text:
      // wslay checks UTF-8 as frames arrive; this guards the control parser all the same.
      if (!simdjson::validate_utf8(payload.data(), payload.size())) {
        ws_.reset();
        close_received_ = true;
        fail(CloseCode::invalid_payload, "text message is not valid UTF-8");
        return;
      }
      if (state_ == State::open) on_control(payload);
      return;
    case Opcode::binary:
      if (state_ == State::open)
        reply_error(static_cast<int>(detail::ControlError::unsupported), "binary messages are not understood");
      return;
    case Opcode::close: close_received_ = true; return;
    default:  // ping is answered by wslay; a pong proves liveness, already noted
      return;
  }
}

void Session::on_control(std::string_view text) {
  using detail::ControlError;
  auto parsed = detail::parse_control(text);
  if (!parsed.ok) {
    reply_error(static_cast<int>(parsed.error), parsed.message);
    return;
  }
  switch (parsed.request.op) {
    case detail::ControlRequest::Op::ping: reply_event(R"({"event":"pong"})"); return;
    case detail::ControlRequest::Op::subscribe:
      for (const auto& t : parsed.request.args) {
        if (group_index_known(t)) {
          reply_event(
              fmt::format(R"({{"event":"subscribe","arg":{},"seq":{}}})", detail::json_string(t), hub_.last_seq(t)));
          continue;
        }
        if (subs_.size() >= options_.max_subscriptions) {
          reply_error(static_cast<int>(ControlError::too_many_subscriptions),
                      fmt::format("at most {} subscriptions per connection", options_.max_subscriptions));
          continue;
        }
        detail::Recovery recovery{.snapshot = parsed.request.snapshot, .envelope = envelope_};
        if (const auto* since = parsed.request.since_of(t)) {
          recovery.has_since = true;
          recovery.since = since->seq;
          recovery.epoch = since->epoch;
        }
        detail::Replay replay;
        if (!join(t, recovery, replay)) continue;
        const auto name = detail::json_string(t);
        reply_event(
            fmt::format(R"({{"event":"subscribe","arg":{},"seq":{},"epoch":{}}})", name, replay.seq, replay.epoch));
        if (replay.resync)
          reply_event(fmt::format(R"({{"event":"resync","arg":{},"from":{},"first":{},"epoch":{}}})", name, replay.seq,
                                  replay.first, replay.epoch));
        // Under the policy like live frames: a replay cannot take the queue past its limits.
        BackpressureCounters counters;
        const detail::Topic& joined = *subs_.back().topic;
        if (!replay.frames.empty()) replayed_until_ns_ = detail::steady_now_ns();
        for (const auto& f : replay.frames) deliver(f, joined, counters);
        shard_.add_counters(counters);
      }
      return;
    case detail::ControlRequest::Op::unsubscribe:
      for (const auto& t : parsed.request.args) {
        if (unsubscribe(t))
          reply_event(fmt::format(R"({{"event":"unsubscribe","arg":{}}})", detail::json_string(t)));
        else
          reply_error(static_cast<int>(ControlError::not_subscribed), fmt::format("not subscribed to {}", t));
      }
      return;
  }
}

bool Session::group_index_known(std::string_view topic) const noexcept {
  for (const auto& s : subs_)
    if (s.topic->name == topic) return true;
  return false;
}

bool Session::subscribe(std::string_view topic) {
  if (group_index_known(topic)) return state_ == State::open;
  detail::Replay replay;
  return join(topic, detail::Recovery{.envelope = envelope_}, replay);
}

bool Session::join(std::string_view topic, const detail::Recovery& recovery, detail::Replay& replay) {
  if (state_ != State::open) return false;
  if (subs_.size() >= options_.max_subscriptions) return false;
  std::shared_ptr<detail::Topic> t;
  std::size_t index = 0;
  switch (detail::HubMembers::subscribe(hub_, topic, shard_.index(), this, recovery, t, index, replay)) {
    case detail::SubscribeResult::ok: break;
    case detail::SubscribeResult::invalid_topic:
      reply_error(static_cast<int>(detail::ControlError::invalid_topic),
                  fmt::format("invalid topic name {}", detail::json_string(topic)));
      return false;
    case detail::SubscribeResult::too_many_topics:
      reply_error(static_cast<int>(detail::ControlError::too_many_topics), "the server has too many topics");
      return false;
  }
  subs_.push_back({std::move(t), index});
  owner_.subscriptions.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Session::unsubscribe(std::string_view topic) {
  for (std::size_t i = 0; i < subs_.size(); ++i) {
    if (subs_[i].topic->name != topic) continue;
    leave(i);
    return true;
  }
  return false;
}

void Session::leave(std::size_t k) {
  const auto t = subs_[k].topic;
  const std::size_t index = subs_[k].index;
  auto& group = t->groups[shard_.index()];
  if (group.flagged[index]) {
    BackpressureCounters counters;
    pull(*t, group, index, counters);
    shard_.add_counters(counters);
  }
  // Swap-remove: the member that took our place learns its new index.
  if (detail::Member* moved = detail::HubMembers::unsubscribe(hub_, t, shard_.index(), index, this, envelope_))
    static_cast<Session*>(moved)->set_group_index(t.get(), index);
  subs_.erase(subs_.begin() + static_cast<std::ptrdiff_t>(k));
  owner_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
}

void Session::unsubscribe_all() {
  while (!subs_.empty()) leave(subs_.size() - 1);
  subs_.shrink_to_fit();
}

// ---------------------------------------------------------------- timers and the end

void Session::tick(std::chrono::steady_clock::time_point now) {
  using std::chrono::duration_cast;
  switch (state_) {
    case State::handshake:
      if (now - last_read_ > owner_.server.options().handshake_timeout) {
        detail::ShardCounters::add(owner_.rejected, 1);
        finish();
      }
      return;
    case State::open:
      if (waiting_writable_ && options_.write_timeout.count() > 0 &&
          now - write_blocked_since_ > options_.write_timeout) {
        detail::ShardCounters::add(shard_.counters.write_timeouts, 1);
        finish();
        return;
      }
      if (options_.idle_timeout.count() > 0 && now - last_read_ > options_.idle_timeout) {
        close(CloseCode::going_away, "idle timeout");
        return;
      }
      if (options_.ping_interval.count() > 0 && !ping_outstanding_ && now - last_read_ > options_.ping_interval) {
        ping_outstanding_ = true;
        queue_.push_control(Frame::make(Opcode::ping, {}));
        schedule_flush();
      }
      // Free the queue's storage only after a quiet spell: a session that receives a message every
      // few ticks would otherwise allocate it again for every message.
      if (delivered_since_tick_)
        quiet_ticks_ = 0;
      else if (quiet_ticks_ < 255)
        ++quiet_ticks_;
      delivered_since_tick_ = false;
      if (quiet_ticks_ >= k_quiet_ticks_before_shrink && !waiting_writable_) queue_.shrink_if_empty();
      return;
    case State::closing:
      if (now - closing_since_ > options_.close_timeout) finish();
      return;
    case State::closed: return;
  }
}

void Session::finish() {
  if (state_ == State::closed) return;
  const bool was_ws = state_ != State::handshake;
  state_ = State::closed;
  unsubscribe_all();
  if (dirty_) shard_.forget(this);
  dirty_ = false;
  queue_.clear();
  ws_.reset();
  request_.reset();
  close_transport();
  owner_.remove(this);
  if (was_ws && owner_.server.callbacks().on_close) owner_.server.callbacks().on_close(*this);
  // Handlers may still be queued for this session; the last reference goes with them.
  asio::post(shard_.context(), [keep = std::move(self_)] {});
}

}  // namespace fanout

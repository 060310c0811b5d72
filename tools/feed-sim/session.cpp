#include "session.hpp"

#include <algorithm>

#include "request.hpp"
#include "upgrade.hpp"

namespace fanout::sim::detail {
namespace {

constexpr std::size_t k_max_head = 16 * 1024;  // HTTP request head
constexpr std::size_t k_max_gather = 64;       // buffers per gather-write

}  // namespace

Session::Session(Core& sim, tcp::socket socket, std::uint64_t id)
    : sim_(sim), socket_(std::move(socket)), id_(id), timer_(sim.ioc), delay_timer_(sim.ioc) {
  conn_id_ = fmt::format("{:08x}", std::uint32_t(sim.rng()));
  if (sim.tls) tls_.emplace(std::move(socket_), *sim.tls);
}

Session::~Session() {
  if (ctx_) wslay_event_context_free(ctx_);
}

void Session::start() {
  timer_.expires_after(sim_.opts.handshake_timeout);
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec && self->state_ == State::handshaking) {
      self->sim_.log("conn {}: handshake timeout", self->id_);
      self->abort();
    }
  });
  if (tls_) {
    tls_->async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
      if (self->state_ == State::closed) return;
      if (ec) {
        self->sim_.log("conn {}: TLS handshake failed: {}", self->id_, ec.message());
        return self->abort();
      }
      self->read_head();
    });
  } else {
    read_head();
  }
}

void Session::deliver(Message& m) {
  if (state_ != State::open) return;
  if (sim_.opts.gzip_binary)
    enqueue(m.gzip());
  else if (window_bits_)
    enqueue(m.deflated(window_bits_));
  else
    enqueue(m.text());
  ++sim_.stat_messages;
}

void Session::send_control(std::string_view payload) {
  if (!sim_.silent) send_text(payload);
}

void Session::send_text(std::string_view payload) {
  if (state_ != State::open) return;
  if (window_bits_)
    enqueue(make_frame(k_text, sim_.codecs.deflate(payload, window_bits_), true));
  else
    enqueue(make_frame(k_text, payload));
}

void Session::send_raw(Bytes b) {
  if (state_ == State::open) enqueue(std::move(b));
}

void Session::unsilence() {
  if (state_ == State::open) flush_wslay();
}

void Session::close_socket(bool reset) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  error_code ignored;
  timer_.cancel();
  delay_timer_.cancel();
  if (reset)
    lowest().set_option(asio::socket_base::linger(true, 0), ignored);
  else
    lowest().shutdown(tcp::socket::shutdown_both, ignored);
  lowest().close(ignored);
  out_.clear();
  out_bytes_ = 0;
  if (ctx_) --sim_.stat_connections;  // counted once the upgrade succeeded
  sim_.log("conn {}: {}", id_, reset ? "reset" : "closed");
  sim_.unregister(*this);  // callers hold a reference to us
}

void Session::read_head() {
  with_stream([this](auto& s) {
    asio::async_read_until(s, asio::dynamic_buffer(head_, k_max_head), "\r\n\r\n",
                           [self = shared_from_this()](error_code ec, std::size_t n) { self->on_head(ec, n); });
  });
}

void Session::on_head(error_code ec, std::size_t n) {
  if (state_ == State::closed) return;
  timer_.cancel();
  if (ec) {
    if (ec == asio::error::not_found)
      return reply_and_close(
          http_response("431 Request Header Fields Too Large", "text/plain", "request head too large\n"));
    return abort();
  }
  pending_input_ = head_.substr(n);
  Request req;
  if (!parse_request(std::string_view(head_).substr(0, n), req) || req.method != "GET")
    return reply_and_close(http_response("400 Bad Request", "text/plain", "expected a GET request\n"));
  if (!has_token(req.header("upgrade"), "websocket")) {
    // Plain HTTP: the advertised instruments, OKX-style.
    std::string body = R"({"code":"0","data":[)";
    for (std::size_t i = 0; i < sim_.opts.instruments.size(); ++i)
      body += fmt::format(R"({}{{"instId":"{}"}})", i ? "," : "", echo_escape(sim_.opts.instruments[i]));
    body += "]}";
    return reply_and_close(http_response("200 OK", "application/json", body));
  }
  std::string key = req.header("sec-websocket-key");
  if (!has_token(req.header("connection"), "upgrade") || key.empty() || key.size() > 64)
    return reply_and_close(http_response("400 Bad Request", "text/plain", "bad WebSocket upgrade\n"));
  if (req.header("sec-websocket-version") != "13")
    return reply_and_close(http_response("426 Upgrade Required", "text/plain", "WebSocket version 13 only\n",
                                         "Sec-WebSocket-Version: 13\r\n"));

  std::string extensions;
  if (sim_.opts.deflate) window_bits_ = negotiate_deflate(req.header("sec-websocket-extensions"), extensions);
  response_ = fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
      websocket_accept(key));
  if (window_bits_) response_ += fmt::format("Sec-WebSocket-Extensions: {}\r\n", extensions);
  response_ += "\r\n";
  sim_.log("conn {}: upgrade {}{}", id_, req.target, window_bits_ ? " (permessage-deflate)" : "");

  if (sim_.handshake_delay.count() > 0) {
    delay_timer_.expires_after(sim_.handshake_delay);
    delay_timer_.async_wait([self = shared_from_this()](error_code e) {
      if (!e && self->state_ == State::handshaking) self->open();
    });
  } else {
    open();
  }
}

void Session::reply_and_close(std::string response) {
  state_ = State::closing;  // closes once this is written
  enqueue(std::make_shared<const std::string>(std::move(response)));
}

void Session::open() {
  static constexpr wslay_event_callbacks callbacks{&Session::recv_cb, &Session::send_cb, nullptr,         nullptr,
                                                   nullptr,           nullptr,           &Session::msg_cb};
  if (wslay_event_context_server_init(&ctx_, &callbacks, this) != 0) return abort();
  wslay_event_config_set_max_recv_msg_length(ctx_, sim_.opts.max_message_bytes);
  if (window_bits_) wslay_event_config_set_allowed_rsv_bits(ctx_, WSLAY_RSV1_BIT);
  state_ = State::open;
  ++sim_.stat_connections;
  ++sim_.stat_total;
  enqueue(std::make_shared<const std::string>(std::move(response_)));
  if (!pending_input_.empty()) {
    in_ = pending_input_;
    feed();
  } else {
    read_more();
  }
}

void Session::read_more() {
  with_stream([this](auto& s) {
    s.async_read_some(asio::buffer(rbuf_), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (self->state_ == State::closed) return;
      if (ec) {
        self->sim_.log("conn {}: read: {}", self->id_, ec.message());
        return self->close_socket(false);
      }
      self->in_ = std::string_view(self->rbuf_.data(), n);
      self->feed();
    });
  });
}

void Session::feed() {
  int rv = wslay_event_recv(ctx_);
  if (state_ == State::closed) return;
  if (rv != 0) return abort();
  if (failure_code_) {
    wslay_event_queue_close(ctx_, failure_code_, nullptr, 0);
    wslay_event_shutdown_read(ctx_);
  }
  bool done = !wslay_event_get_read_enabled(ctx_);  // close received, or protocol error
  flush_wslay(done);
  if (state_ != State::open) return;
  if (done) return begin_close();
  read_more();
}

ssize_t Session::recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) {
  auto* self = static_cast<Session*>(user);
  if (self->in_.empty()) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  std::size_t n = std::min(len, self->in_.size());
  std::copy_n(self->in_.data(), n, buf);
  self->in_.remove_prefix(n);
  return ssize_t(n);
}

ssize_t Session::send_cb(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) {
  auto* self = static_cast<Session*>(user);
  self->enqueue(std::make_shared<const std::string>(reinterpret_cast<const char*>(data), len));
  return ssize_t(len);
}

void Session::msg_cb(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
  static_cast<Session*>(user)->on_message(*arg);
}

void Session::on_message(const wslay_event_on_msg_recv_arg& m) {
  if (failure_code_ || (m.opcode != WSLAY_TEXT_FRAME && m.opcode != WSLAY_BINARY_FRAME)) return;
  std::string_view payload(reinterpret_cast<const char*>(m.msg), m.msg_length);
  std::string inflated;
  if (wslay_get_rsv1(m.rsv)) {
    if (!inflate_message(payload, sim_.opts.max_message_bytes, inflated)) {
      sim_.log("conn {}: bad compressed message", id_);
      failure_code_ = 1007;
      return;
    }
    payload = inflated;
  }
  if (m.opcode == WSLAY_BINARY_FRAME) return error_reply("binary message", "binary frames are not accepted");
  handle_request(payload);
}

void Session::error_reply(std::string_view request, std::string_view why) {
  sim_.log("conn {}: invalid request ({})", id_, why);
  send_control(fmt::format(R"j({{"event":"error","code":"60012","msg":"Invalid request: {} ({})","connId":"{}"}})j",
                           echo_escape(request), echo_escape(why), conn_id_));
}

void Session::enqueue(Bytes b) {
  if (state_ != State::open && state_ != State::closing) return;
  out_bytes_ += b->size();
  out_.push_back(std::move(b));
  if (out_bytes_ > sim_.opts.max_queued_bytes) {
    sim_.log("conn {}: {} bytes queued, dropping the client", id_, out_bytes_);
    ++sim_.stat_slow;
    // Deferred: we may be inside a loop over a stream's subscribers.
    asio::post(sim_.ioc, [self = shared_from_this()] { self->abort(); });
    state_ = State::closing;
    return;
  }
  write_more();
}

void Session::flush_wslay(bool closing) {
  // Silent: hold wslay's pongs back too, but never the close handshake.
  if (sim_.silent && !closing) return;
  if (wslay_event_want_write(ctx_) && wslay_event_send(ctx_) != 0) abort();
}

void Session::begin_close() {
  if (state_ == State::closed) return;
  state_ = State::closing;
  if (out_.empty() && !writing_) close_socket(false);
}

void Session::write_more() {
  if (writing_ || out_.empty() || state_ == State::closed) return;
  writing_ = true;
  in_flight_ = std::min(out_.size(), k_max_gather);
  gather_.clear();
  for (std::size_t i = 0; i < in_flight_; ++i) gather_.push_back(asio::buffer(*out_[i]));
  with_stream([this](auto& s) {
    asio::async_write(s, gather_, [self = shared_from_this()](error_code ec, std::size_t n) { self->on_write(ec, n); });
  });
}

void Session::on_write(error_code ec, std::size_t n) {
  writing_ = false;
  if (state_ == State::closed) return;
  if (ec) {
    sim_.log("conn {}: write: {}", id_, ec.message());
    return abort();
  }
  sim_.stat_bytes += n;
  for (std::size_t i = 0; i < in_flight_; ++i) {
    out_bytes_ -= out_.front()->size();
    out_.pop_front();
  }
  if (state_ == State::closing && out_.empty()) return close_socket(false);
  write_more();
}

void Session::handle_request(std::string_view text) {
  if (text == "ping") return send_control("pong");
  ClientRequest req;
  std::string error;
  if (!parse_client_request(text, req, error)) return error_reply(text, error);
  const bool subscribe = req.op == "subscribe";
  const std::string id_field = req.id.empty() ? std::string() : fmt::format(R"("id":"{}",)", req.id);

  for (auto& [channel, inst] : req.args) {
    std::string key = Core::stream_key(channel, inst);
    if (subscribe && !subscriptions_.contains(key)) {
      Core::Stream* st = sim_.find_or_create(channel, inst);
      if (!st) return error_reply(text, "too many streams");
      st->subscribers.push_back(shared_from_this());
      subscriptions_.insert(std::move(key));
      ++sim_.stat_subscriptions;
    } else if (!subscribe && subscriptions_.erase(key)) {
      auto& subs = sim_.streams.at(key).subscribers;
      std::erase_if(subs, [this](const auto& s) { return s.get() == this; });
      --sim_.stat_subscriptions;
    }
    send_control(fmt::format(R"({{{}"event":"{}","arg":{{"channel":"{}","instId":"{}"}},"connId":"{}"}})", id_field,
                             req.op, channel, inst, conn_id_));
  }
}

}  // namespace fanout::sim::detail

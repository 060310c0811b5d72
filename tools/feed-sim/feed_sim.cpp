#include "feed_sim.hpp"

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <fmt/format.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "request.hpp"
#include "upgrade.hpp"
#include "wire.hpp"

namespace fanout::sim {
namespace {

using tcp = asio::ip::tcp;
using error_code = std::error_code;
using Clock = std::chrono::steady_clock;
using namespace detail;

constexpr std::size_t k_max_head = 16 * 1024;  // HTTP request head
constexpr std::size_t k_max_gather = 64;       // buffers per gather-write
constexpr std::uint64_t k_max_burst = 1000;    // ticks caught up per timer expiry

std::int64_t unix_micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------------------------------------

class Session;

// The simulator's state; everything but the atomics is touched on the io thread only.
struct Core {
  struct Stream {
    std::string channel, inst;
    std::uint64_t seq = 0;
    double last = 0;
    std::vector<std::shared_ptr<Session>> subscribers;
  };

  explicit Core(FeedSimulator::Options o)
      : opts(std::move(o)), rate(opts.rate), handshake_delay(opts.handshake_delay) {}

  // Runs fn on the io thread and waits, or inline when already there or not running.
  template <class F>
  auto run_sync(F&& fn) -> decltype(fn()) {
    if (!running.load() || ioc.get_executor().running_in_this_thread()) return fn();
    std::packaged_task<decltype(fn())()> task(std::forward<F>(fn));
    auto result = task.get_future();
    asio::post(ioc, [&task] { task(); });
    return result.get();
  }

  template <class... Args>
  void log(fmt::format_string<Args...> f, Args&&... args) {
    if (!opts.verbose) return;
    fmt::print(stderr, "feed-sim: {}\n", fmt::format(f, std::forward<Args>(args)...));
  }

  void start();
  void shutdown();
  void accept();
  void schedule_tick();
  void on_tick(std::uint64_t generation);
  void emit_tick();
  void apply_rate(double per_second);

  Stream* find_or_create(const std::string& channel, const std::string& inst);
  static std::string stream_key(std::string_view channel, std::string_view inst) {
    std::string k(channel);
    k += '\n';
    k += inst;
    return k;
  }
  void unregister(Session& s);
  std::vector<std::shared_ptr<Session>> all_sessions() const {
    std::vector<std::shared_ptr<Session>> out;
    out.reserve(sessions.size());
    for (auto& [id, s] : sessions) out.push_back(s);
    return out;
  }

  FeedSimulator::Options opts;
  // Declared before ioc: sessions (destroyed with ioc's pending handlers) refer to it.
  std::optional<asio::ssl::context> tls;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  asio::steady_timer tick_timer{ioc};
  asio::steady_timer accept_retry{ioc};
  std::thread thread;
  std::atomic<bool> running{false};
  bool started = false;
  bool stopping = false;

  Codecs codecs;
  std::mt19937_64 rng{42};
  std::string pad;  // random alphanumerics, so compression ratios look like real data
  std::map<std::string, Stream> streams;
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions;  // every live connection
  std::uint64_t next_id = 1;

  // Ticks are scheduled against rate_start: tick k is due at rate_start + k / rate.
  double rate;
  Clock::time_point rate_start{};
  std::uint64_t emitted = 0;
  std::uint64_t tick_generation = 0;

  std::chrono::milliseconds handshake_delay;
  bool silent = false;

  // Read by stats() from any thread, written on the io thread.
  std::atomic<std::uint16_t> bound_port{0};
  std::atomic<std::size_t> stat_connections{0}, stat_subscriptions{0}, stat_streams{0};
  std::atomic<std::uint64_t> stat_messages{0}, stat_bytes{0}, stat_total{0}, stat_slow{0};
  std::atomic<double> stat_rate{0};
  std::atomic<bool> stat_silent{false};
};

// One client connection: TLS (optional), HTTP upgrade, then wslay parses what the client sends
// (masking, fragmentation, control frames, close handshake) while frames we send are encoded here
// and queued by reference; wslay's own output (pongs, close) joins the same queue through its
// send callback, which never blocks.
class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class State { handshaking, open, closing, closed };

  Session(Core& sim, tcp::socket socket, std::uint64_t id)
      : sim_(sim), socket_(std::move(socket)), id_(id), timer_(sim.ioc), delay_timer_(sim.ioc) {
    conn_id_ = fmt::format("{:08x}", std::uint32_t(sim.rng()));
    if (sim.tls) tls_.emplace(std::move(socket_), *sim.tls);
  }
  ~Session() {
    if (ctx_) wslay_event_context_free(ctx_);
  }

  std::uint64_t id() const { return id_; }
  bool is_open() const { return state_ == State::open; }
  const std::string& conn_id() const { return conn_id_; }
  std::unordered_set<std::string>& subscriptions() { return subscriptions_; }

  void start() {
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

  // A data message: the encoding this connection negotiated, shared with every other subscriber.
  void deliver(Message& m) {
    if (state_ != State::open) return;
    if (sim_.opts.gzip_binary)
      enqueue(m.gzip());
    else if (window_bits_)
      enqueue(m.deflated(window_bits_));
    else
      enqueue(m.text());
    ++sim_.stat_messages;
  }

  // Acks, errors, pong: nothing while silent.
  void send_control(std::string_view payload) {
    if (!sim_.silent) send_text(payload);
  }

  void send_text(std::string_view payload) {
    if (state_ != State::open) return;
    if (window_bits_)
      enqueue(make_frame(k_text, sim_.codecs.deflate(payload, window_bits_), true));
    else
      enqueue(make_frame(k_text, payload));
  }

  void send_raw(Bytes b) {
    if (state_ == State::open) enqueue(std::move(b));
  }

  // Silent mode just ended: release what wslay held back (pongs, at least).
  void unsilence() {
    if (state_ == State::open) flush_wslay();
  }

  // TCP reset: no close frame, no close_notify.
  void abort() { close_socket(true); }

 private:
  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(socket_);
  }
  tcp::socket::lowest_layer_type& lowest() { return tls_ ? tls_->lowest_layer() : socket_.lowest_layer(); }

  void close_socket(bool reset) {
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

  // ---- handshake

  void read_head() {
    with_stream([this](auto& s) {
      asio::async_read_until(s, asio::dynamic_buffer(head_, k_max_head), "\r\n\r\n",
                             [self = shared_from_this()](error_code ec, std::size_t n) { self->on_head(ec, n); });
    });
  }

  void on_head(error_code ec, std::size_t n) {
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

  void reply_and_close(std::string response) {
    state_ = State::closing;  // closes once this is written
    enqueue(std::make_shared<const std::string>(std::move(response)));
  }

  void open() {
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

  // ---- reading

  void read_more() {
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

  void feed() {
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

  static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) {
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

  static ssize_t send_cb(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) {
    auto* self = static_cast<Session*>(user);
    self->enqueue(std::make_shared<const std::string>(reinterpret_cast<const char*>(data), len));
    return ssize_t(len);
  }

  static void msg_cb(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) {
    static_cast<Session*>(user)->on_message(*arg);
  }

  void on_message(const wslay_event_on_msg_recv_arg& m) {
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

  // ---- requests

  void error_reply(std::string_view request, std::string_view why) {
    sim_.log("conn {}: invalid request ({})", id_, why);
    send_control(fmt::format(R"j({{"event":"error","code":"60012","msg":"Invalid request: {} ({})","connId":"{}"}})j",
                             echo_escape(request), echo_escape(why), conn_id_));
  }

  void handle_request(std::string_view text);

  // ---- writing

  void enqueue(Bytes b) {
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

  void flush_wslay(bool closing = false) {
    // Silent: hold wslay's pongs back too, but never the close handshake.
    if (sim_.silent && !closing) return;
    if (wslay_event_want_write(ctx_) && wslay_event_send(ctx_) != 0) abort();
  }

  void begin_close() {
    if (state_ == State::closed) return;
    state_ = State::closing;
    if (out_.empty() && !writing_) close_socket(false);
  }

  void write_more() {
    if (writing_ || out_.empty() || state_ == State::closed) return;
    writing_ = true;
    in_flight_ = std::min(out_.size(), k_max_gather);
    gather_.clear();
    for (std::size_t i = 0; i < in_flight_; ++i) gather_.push_back(asio::buffer(*out_[i]));
    with_stream([this](auto& s) {
      asio::async_write(s, gather_,
                        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_write(ec, n); });
    });
  }

  void on_write(error_code ec, std::size_t n) {
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

  Core& sim_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  std::uint64_t id_;
  std::string conn_id_;
  State state_ = State::handshaking;
  asio::steady_timer timer_, delay_timer_;
  std::string head_, pending_input_, response_;
  int window_bits_ = 0;  // permessage-deflate negotiated when nonzero
  wslay_event_context_ptr ctx_ = nullptr;
  std::array<char, 16384> rbuf_{};
  std::string_view in_;  // bytes wslay has not consumed yet
  std::uint16_t failure_code_ = 0;
  std::deque<Bytes> out_;
  std::size_t out_bytes_ = 0;
  std::vector<asio::const_buffer> gather_;
  std::size_t in_flight_ = 0;
  bool writing_ = false;
  std::unordered_set<std::string> subscriptions_;  // stream keys
};

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

// ---------------------------------------------------------------------------------------------

Core::Stream* Core::find_or_create(const std::string& channel, const std::string& inst) {
  std::string key = stream_key(channel, inst);
  if (auto it = streams.find(key); it != streams.end()) return &it->second;
  if (streams.size() >= opts.max_streams) return nullptr;
  Stream st{channel, inst, 0, 0.0, {}};
  // A plausible starting price, stable per instrument.
  if (inst.starts_with("BTC"))
    st.last = 64000.0;
  else if (inst.starts_with("ETH"))
    st.last = 3200.0;
  else
    st.last = 1.0 + double(std::hash<std::string>{}(inst) % 1000);
  ++stat_streams;
  return &streams.emplace(std::move(key), std::move(st)).first->second;
}

void Core::unregister(Session& s) {
  for (auto& key : s.subscriptions()) {
    auto it = streams.find(key);
    if (it == streams.end()) continue;
    std::erase_if(it->second.subscribers, [&s](const auto& p) { return p.get() == &s; });
    --stat_subscriptions;
  }
  s.subscriptions().clear();
  sessions.erase(s.id());
}

void Core::start() {
  if (opts.tls_cert.empty() != opts.tls_key.empty())
    throw std::invalid_argument("feed-sim: TLS needs both a certificate and a key");
  if (!(opts.rate >= 0) || !std::isfinite(opts.rate)) throw std::invalid_argument("feed-sim: rate must be >= 0");
  if (!opts.tls_cert.empty()) {
    tls.emplace(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3);
    tls->use_certificate_chain_file(opts.tls_cert);
    tls->use_private_key_file(opts.tls_key, asio::ssl::context::pem);
  }

  tcp::resolver resolver(ioc);
  auto endpoint = resolver.resolve(opts.host, std::to_string(opts.port), tcp::resolver::passive).begin()->endpoint();
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  bound_port = acceptor.local_endpoint().port();

  std::uniform_int_distribution<int> pick(0, 61);
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  pad.resize(std::max<std::size_t>(opts.size, 1));
  for (auto& c : pad) c = alphabet[std::size_t(pick(rng))];

  for (auto& inst : opts.instruments)
    if (valid_name(inst)) find_or_create("tickers", inst);

  stat_silent = silent;
  apply_rate(rate);
  accept();
  running = true;
  thread = std::thread([this] { ioc.run(); });
}

void Core::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket socket) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Typically EMFILE: wait a little rather than spin.
      log("accept: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](error_code e) {
        if (!e && !stopping) accept();
      });
      return;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto id = next_id++;
    log("conn {}: accepted from {}", id, socket.remote_endpoint(ignored).address().to_string());
    auto s = std::make_shared<Session>(*this, std::move(socket), id);
    sessions.emplace(id, s);
    s->start();
    accept();
  });
}

void Core::shutdown() {
  stopping = true;
  error_code ignored;
  acceptor.close(ignored);
  tick_timer.cancel();
  accept_retry.cancel();
  for (auto& s : all_sessions()) s->abort();
}

void Core::apply_rate(double per_second) {
  rate = per_second;
  stat_rate = per_second;
  rate_start = Clock::now();
  emitted = 0;
  ++tick_generation;
  tick_timer.cancel();
  schedule_tick();
}

void Core::schedule_tick() {
  if (rate <= 0 || stopping) return;
  auto due = rate_start +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(double(emitted + 1) / rate));
  // At high rates fire at most every millisecond and catch up in bursts.
  tick_timer.expires_at(std::max(due, Clock::now() + std::chrono::milliseconds(1)));
  tick_timer.async_wait([this, generation = tick_generation](error_code ec) {
    if (!ec) on_tick(generation);
  });
}

void Core::on_tick(std::uint64_t generation) {
  if (generation != tick_generation || stopping) return;  // the rate changed meanwhile
  double elapsed = std::chrono::duration<double>(Clock::now() - rate_start).count();
  auto target = std::uint64_t(elapsed * rate + 1e-6);
  std::uint64_t due = target > emitted ? target - emitted : 0;
  if (due > k_max_burst) {
    // Too far behind (a stall, or a rate we cannot keep up with): slip the schedule, keeping seq
    // contiguous rather than bursting without bound.
    emitted += due - k_max_burst;
    due = k_max_burst;
  }
  for (std::uint64_t i = 0; i < due; ++i, ++emitted) emit_tick();
  schedule_tick();
}

void Core::emit_tick() {
  std::uniform_real_distribution<double> step(-2e-4, 2e-4);
  auto ts = unix_micros();
  for (auto& [key, st] : streams) {
    ++st.seq;
    st.last = std::max(0.1, st.last * (1.0 + step(rng)));
    if (st.subscribers.empty() || silent) continue;
    auto payload = fmt::format(
        R"({{"arg":{{"channel":"{}","instId":"{}"}},"data":[{{"instId":"{}","last":"{:.1f}","seq":{},"ts":{},"pad":")",
        st.channel, st.inst, st.inst, st.last, st.seq, ts);
    constexpr std::size_t tail = 4;  // "}]}
    if (payload.size() + tail < opts.size) payload.append(pad, 0, opts.size - payload.size() - tail);
    payload += R"("}]})";
    Message m(std::move(payload), codecs);
    for (auto& s : st.subscribers) s->deliver(m);  // deliver never removes subscribers synchronously
  }
}

}  // namespace

struct FeedSimulator::Impl : Core {
  using Core::Core;
};

// ---------------------------------------------------------------------------------------------

FeedSimulator::FeedSimulator(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

FeedSimulator::~FeedSimulator() { stop(); }

void FeedSimulator::start() {
  if (impl_->started) throw std::logic_error("feed-sim: start() may be called once");
  impl_->started = true;
  impl_->start();
}

void FeedSimulator::stop() {
  if (!impl_->running.exchange(false)) return;
  asio::post(impl_->ioc, [impl = impl_.get()] {
    impl->shutdown();
    // Anything still pending (a TLS operation mid-flight) is destroyed with the io_context.
    asio::post(impl->ioc, [impl] { impl->ioc.stop(); });
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t FeedSimulator::port() const { return impl_->bound_port; }

std::size_t FeedSimulator::drop_connections() {
  return impl_->run_sync([impl = impl_.get()] {
    auto all = impl->all_sessions();
    for (auto& s : all) s->abort();
    return all.size();
  });
}

std::size_t FeedSimulator::drop_one_connection() {
  return impl_->run_sync([impl = impl_.get()] {
    // Ids grow with each accept, so the smallest open one is the oldest connection.
    std::shared_ptr<Session> oldest;
    for (auto& s : impl->all_sessions())
      if (s->is_open() && (!oldest || s->id() < oldest->id())) oldest = s;
    if (!oldest) return std::size_t{0};
    oldest->abort();
    return std::size_t{1};
  });
}

void FeedSimulator::set_silent(bool on) {
  impl_->run_sync([impl = impl_.get(), on] {
    bool was = impl->silent;
    impl->silent = on;
    impl->stat_silent = on;
    if (was && !on)
      for (auto& s : impl->all_sessions()) s->unsilence();
  });
}

std::size_t FeedSimulator::send_garbage_json() {
  return impl_->run_sync([impl = impl_.get()] {
    std::size_t n = 0;
    for (auto& s : impl->all_sessions()) {
      if (!s->is_open()) continue;
      s->send_text(R"({"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1.0",,}]} not json)");
      ++n;
    }
    return n;
  });
}

std::size_t FeedSimulator::send_garbage_frame() {
  return impl_->run_sync([impl = impl_.get()] {
    // FIN + reserved opcode 0x3, 7 bytes of payload: every conforming client must fail the connection.
    static const Bytes frame = std::make_shared<const std::string>(std::string("\x83\x07", 2) + "garbage");
    std::size_t n = 0;
    for (auto& s : impl->all_sessions()) {
      if (!s->is_open()) continue;
      s->send_raw(frame);
      ++n;
    }
    return n;
  });
}

void FeedSimulator::set_handshake_delay(std::chrono::milliseconds delay) {
  impl_->run_sync([impl = impl_.get(), delay] { impl->handshake_delay = delay; });
}

void FeedSimulator::set_rate(double per_second) {
  if (!(per_second >= 0) || !std::isfinite(per_second)) throw std::invalid_argument("feed-sim: rate must be >= 0");
  impl_->run_sync([impl = impl_.get(), per_second] { impl->apply_rate(per_second); });
}

FeedSimulator::Stats FeedSimulator::stats() const {
  const Impl& i = *impl_;
  Stats s;
  s.connections = i.stat_connections;
  s.subscriptions = i.stat_subscriptions;
  s.messages_sent = i.stat_messages;
  s.bytes_sent = i.stat_bytes;
  s.streams = i.stat_streams;
  s.connections_total = i.stat_total;
  s.slow_drops = i.stat_slow;
  s.rate = i.stat_rate;
  s.silent = i.stat_silent;
  return s;
}

std::string to_json(const FeedSimulator::Stats& s) {
  return fmt::format(R"({{"connections":{},"subscriptions":{},"messages_sent":{},"bytes_sent":{},"streams":{},)"
                     R"("connections_total":{},"slow_drops":{},"rate":{},"silent":{}}})",
                     s.connections, s.subscriptions, s.messages_sent, s.bytes_sent, s.streams, s.connections_total,
                     s.slow_drops, s.rate, s.silent);
}

}  // namespace fanout::sim

#include "fanout/upstream.hpp"

#include <zlib.h>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read_until.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>

#include "fanout/detail/frame_reader.hpp"
#include "fanout/detail/upstream_fsm.hpp"
#include "fanout/detail/websocket_key.hpp"
#include "fanout/error.hpp"
#include "fanout/http.hpp"
#include "fanout/redact.hpp"

namespace fanout {

WsUrl parse_ws_url(std::string_view url) {
  WsUrl u;
  std::string_view rest;
  if (url.starts_with("wss://")) {
    u.tls = true;
    rest = url.substr(6);
  } else if (url.starts_with("ws://")) {
    rest = url.substr(5);
  } else {
    throw std::invalid_argument(
        fmt::format("fanout: upstream URL must start with ws:// or wss://: '{}'", redact_url(url)));
  }
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    // user:password@ becomes HTTP Basic authentication on the upgrade (as browsers and ws clients do).
    const auto userinfo = detail::url_decode(authority.substr(0, at));
    if (!userinfo) throw std::invalid_argument(fmt::format("fanout: bad user info in '{}'", redact_url(url)));
    u.userinfo = *userinfo;
    authority.remove_prefix(at + 1);
  }
  if (slash != std::string_view::npos) u.target = std::string(rest.substr(slash));
  if (!u.target.empty() && u.target[0] == '?') u.target = "/" + u.target;
  if (authority.starts_with('[')) {  // [::1]:443
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      throw std::invalid_argument(fmt::format("fanout: bad IPv6 host in '{}'", redact_url(url)));
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (authority.starts_with(':')) u.port = std::string(authority.substr(1));
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) throw std::invalid_argument(fmt::format("fanout: no host in '{}'", redact_url(url)));
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  if (!std::all_of(u.port.begin(), u.port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw std::invalid_argument(fmt::format("fanout: bad port in '{}'", redact_url(url)));
  return u;
}

const char* Upstream::to_string(State s) noexcept {
  switch (s) {
    case State::stopped: return "stopped";
    case State::connecting: return "connecting";
    case State::live: return "live";
    case State::backing_off: return "backing_off";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

/// Inflates permessage-deflate messages (raw deflate + the 00 00 ff ff tail) or gzip/zlib data.
class Inflater {
 public:
  explicit Inflater(int window_bits) : window_bits_(window_bits) {}
  ~Inflater() {
    if (ready_) inflateEnd(&z_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  /// Appends the inflated bytes of `in` to `out`; false on corrupt data or over `limit`.
  bool inflate(std::string_view in, bool add_tail, std::size_t limit, std::string& out) {
    if (!ready_) {
      if (inflateInit2(&z_, window_bits_) != Z_OK) return false;
      ready_ = true;
    }
    static constexpr unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    auto run = [&](const unsigned char* p, std::size_t n) {
      z_.next_in = const_cast<unsigned char*>(p);
      z_.avail_in = static_cast<uInt>(n);
      while (z_.avail_in > 0) {
        char buf[16384];
        z_.next_out = reinterpret_cast<unsigned char*>(buf);
        z_.avail_out = sizeof buf;
        const int rc = ::inflate(&z_, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return false;
        out.append(buf, sizeof buf - z_.avail_out);
        if (out.size() > limit) return false;
        if (rc == Z_STREAM_END) {
          inflateReset(&z_);  // gzip members or a finished zlib stream: the next starts afresh
          if (z_.avail_in == 0) break;
        }
        if (rc == Z_BUF_ERROR && z_.avail_out != 0) break;
      }
      return true;
    };
    if (!run(reinterpret_cast<const unsigned char*>(in.data()), in.size())) return false;
    return !add_tail || run(tail, sizeof tail);
  }
  void reset() {
    if (ready_) inflateReset(&z_);
  }

 private:
  z_stream z_{};
  int window_bits_;
  bool ready_ = false;
};

/// One connection attempt and, if it succeeds, the live connection.
struct Connection {
  Connection(asio::io_context& io, asio::ssl::context& ctx) : resolver(io), stream(io, ctx) {}
  tcp::resolver resolver;
  asio::ssl::stream<tcp::socket> stream;
  std::size_t url = 0;  // index into Options::urls
  bool tls = false;
  bool closed = false;
  std::unique_ptr<detail::FrameReader> ws;  // after the upgrade: frames in and out (client mode)
  std::string request;
  asio::streambuf head{64 * 1024};  // HTTP response head (bounded) and whatever followed it
  std::array<char, 16384> in{};
  std::string writing;  // the write in flight
  bool write_busy = false;
  bool deflate = false;  // permessage-deflate agreed
  bool server_no_context_takeover = false;
  std::unique_ptr<Inflater> pmd;  // permessage-deflate stream
  std::string scratch;            // inflated message
};

using Fsm = detail::UpstreamFsm;

Upstream::State public_state(Fsm::Phase p) noexcept {
  switch (p) {
    case Fsm::Phase::stopped: return Upstream::State::stopped;
    case Fsm::Phase::connecting:
    case Fsm::Phase::handshaking: return Upstream::State::connecting;
    case Fsm::Phase::live: return Upstream::State::live;
    case Fsm::Phase::backing_off: return Upstream::State::backing_off;
  }
  return Upstream::State::stopped;
}

}  // namespace

/// The Asio driver: performs the FSM's actions, feeds it what the sockets report, and keeps one
/// steady_timer at the FSM's next deadline. Everything here runs on the io_context's thread.
struct Upstream::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, Options o, OnMessage m, OnEvent e)
      : io(io),
        options(std::move(o)),
        on_message(std::move(m)),
        on_event(std::move(e)),
        ssl(asio::ssl::context::tls_client),
        timer(io),
        rng(std::random_device{}()),
        fsm(Fsm::Config{
            .endpoints = options.urls.size(),
            .connect_timeout = options.connect_timeout,
            .heartbeat_interval =
                options.heartbeat == Heartbeat::none ? std::chrono::milliseconds(0) : options.heartbeat_interval,
            .stale_timeout = options.stale_timeout,
            .backoff_initial = options.backoff_initial,
            .backoff_max = options.backoff_max,
            .jitter = options.jitter,
            .max_reconnect_attempts = options.max_reconnect_attempts,
            .stable_after = options.stable_after,
            .custom_delay = options.custom_delay,
            .random = [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); },
            .first_endpoint = options.first_url,
            .endpoint_taken = options.avoid_url,
        }) {
    if (options.urls.empty()) throw std::invalid_argument("fanout: Upstream needs at least one URL");
    for (const auto& u : options.urls) {
      urls.push_back(parse_ws_url(u));
      shown_urls.push_back(redact_url(u));
    }
    if (options.insecure_skip_verify) {
      ssl.set_verify_mode(asio::ssl::verify_none);
    } else {
      ssl.set_verify_mode(asio::ssl::verify_peer);
      if (options.ca_file.empty())
        ssl.set_default_verify_paths();
      else
        ssl.load_verify_file(options.ca_file);  // throws with the reason on a bad file
    }
  }

  asio::io_context& io;
  Options options;
  OnMessage on_message;
  OnEvent on_event;
  std::recursive_mutex callback_mutex;  // held while a callback runs; the destructor takes it to detach
  std::atomic<bool> detached{false};    // the Upstream is gone: no callbacks, no new connections
  std::atomic<State> state{State::stopped};
  std::atomic<std::size_t> live_url{k_not_live};  // index of the live connection's URL
  static constexpr std::size_t k_not_live = static_cast<std::size_t>(-1);
  asio::ssl::context ssl;
  asio::steady_timer timer;  // armed at fsm.next_deadline()
  Clock::time_point armed_at = Clock::time_point::max();
  std::uint64_t timer_generation = 0;
  std::vector<WsUrl> urls;
  std::vector<std::string> shown_urls;  // urls without credentials (fanout/redact.hpp): all that leaves this class
  std::shared_ptr<Connection> conn;
  std::mt19937_64 rng;
  Fsm fsm;
  std::uint64_t inputs = 0;           // FSM inputs so far: an input nested in a callback supersedes the outer one
  std::string failure_detail;         // what the driver saw of the failure it reports next, for the log line
  std::string key;                    // Sec-WebSocket-Key of the attempt in flight
  Inflater binary_inflater{15 + 32};  // gzip or zlib header, detected

  mutable std::mutex stats_mutex;
  Stats stats;

  template <class F>
  void count(F f) {
    std::lock_guard lock(stats_mutex);
    f(stats);
  }
  /// Runs a user callback unless the Upstream is gone.
  template <class F>
  void call_user(F f) {
    std::lock_guard lock(callback_mutex);
    if (!detached.load(std::memory_order_relaxed)) f();
  }

  // ------------------------------------------------------------------ the FSM

  void start() {
    if (detached.load(std::memory_order_relaxed)) return;
    run(fsm.start(Clock::now()));
  }
  void stop() { run(fsm.stop(Clock::now())); }

  /// The current attempt or connection failed, as seen by the driver.
  void fail(std::error_code ec, std::string what) {
    failure_detail = std::move(what);
    run(fsm.failed(Clock::now(), ec));
    failure_detail.clear();
  }

  void run(const Fsm::Actions& actions) {
    const auto input = ++inputs;
    for (const auto& a : actions) {
      perform(a);
      if (inputs != input) return;  // a callback destroyed the Upstream: its stop() came after us
    }
    arm_timer();
  }

  void arm_timer() {
    const auto at = fsm.next_deadline();
    if (at == Clock::time_point::max()) {
      if (armed_at != at) {
        ++timer_generation;
        timer.cancel();
        armed_at = at;
      }
      return;
    }
    if (at >= armed_at) return;  // the armed wake-up comes first; the FSM names the next one then
    armed_at = at;
    timer.expires_at(at);
    timer.async_wait([self = shared_from_this(), generation = ++timer_generation](const asio::error_code& ec) {
      if (ec || generation != self->timer_generation) return;
      self->armed_at = Clock::time_point::max();
      self->run(self->fsm.timer(Clock::now()));
    });
  }

  std::string reason(std::error_code ec) const {
    if (!failure_detail.empty()) return failure_detail;
    if (ec == Errc::stale_stream) return fmt::format("stale: no message for {} ms", options.stale_timeout.count());
    if (ec == Errc::connect_timeout) return fmt::format("connect timeout ({} ms)", options.connect_timeout.count());
    return ec ? ec.message() : std::string();
  }

  void perform(const Fsm::Action& a) {
    using K = Fsm::Action::Kind;
    switch (a.kind) {
      case K::connect: connect(a.url); break;
      case K::send_handshake:
        if (conn) send_upgrade(conn);
        break;
      case K::subscribe:
        if (!options.login.empty()) send(Opcode::text, options.login);
        for (const auto& s : options.subscribe) send(Opcode::text, s);
        break;
      case K::heartbeat:
        if (options.heartbeat == Heartbeat::text)
          send(Opcode::text, options.heartbeat_text);
        else
          send(Opcode::ping, {});
        count([](Stats& st) { ++st.heartbeats_sent; });
        break;
      case K::close: close_connection(); break;
      case K::state: report(a); break;
      case K::connected:
        if (options.on_connect) call_user([&] { options.on_connect(shown_urls[a.url]); });
        break;
      case K::reconnected:
        if (options.on_reconnect) call_user([&] { options.on_reconnect(shown_urls[a.url]); });
        break;
      case K::disconnected:
        if (options.on_disconnect) call_user([&] { options.on_disconnect(a.error, reason(a.error)); });
        break;
    }
  }

  void report(const Fsm::Action& a) {
    const State s = public_state(a.phase);
    const bool failure = a.phase == Fsm::Phase::backing_off || a.error == Errc::max_attempts_reached;
    std::string why;
    if (a.error == Errc::max_attempts_reached)
      why = fmt::format("gave up after {} failures in a row{}{}", fsm.failures_in_row(),
                        failure_detail.empty() ? "" : ": ", failure_detail);
    else if (s == State::stopped)
      why = "stopped";
    else
      why = reason(a.error);
    state.store(s, std::memory_order_relaxed);
    live_url.store(s == State::live ? a.url : k_not_live, std::memory_order_relaxed);
    {
      std::lock_guard lock(stats_mutex);
      stats.state = s;
      stats.url = shown_urls[a.url];
      if (failure) {
        ++stats.failures;
        stats.last_error = a.error;
        stats.last_reason = redact_text(why);
      }
    }
    if (on_event)
      call_user([&] {
        on_event(Event{s, shown_urls[a.url], redact_text(why), a.delay, a.error, fsm.failures_in_row()});
      });
  }

  void close_connection() {
    if (!conn) return;
    conn->closed = true;
    asio::error_code ec;
    conn->resolver.cancel();
    conn->stream.lowest_layer().close(ec);
    conn.reset();
  }

  // ------------------------------------------------------------------ connect

  void connect(std::size_t url_index) {
    close_connection();
    auto c = std::make_shared<Connection>(io, ssl);
    conn = c;
    c->url = url_index;
    const WsUrl& u = urls[url_index];
    c->tls = u.tls;
    c->resolver.async_resolve(
        u.host, u.port, [self = shared_from_this(), c](const asio::error_code& ec, tcp::resolver::results_type r) {
          if (c->closed) return;
          if (ec) return self->fail(ec, "resolve: " + ec.message());
          asio::async_connect(c->stream.lowest_layer(), r, [self, c](const asio::error_code& e, const tcp::endpoint&) {
            if (c->closed) return;
            if (e) return self->fail(e, "connect: " + e.message());
            asio::error_code ignored;
            c->stream.lowest_layer().set_option(tcp::no_delay(true), ignored);
            if (c->tls)
              self->tls_handshake(c);
            else
              self->run(self->fsm.connected(Clock::now()));
          });
        });
  }

  void tls_handshake(const std::shared_ptr<Connection>& c) {
    const WsUrl& u = urls[c->url];
    // SNI, and the certificate must name the host we asked for.
    SSL_set_tlsext_host_name(c->stream.native_handle(), u.host.c_str());
    if (!options.insecure_skip_verify) c->stream.set_verify_callback(asio::ssl::host_name_verification(u.host));
    c->stream.async_handshake(asio::ssl::stream_base::client,
                              [self = shared_from_this(), c](const asio::error_code& ec) {
                                if (c->closed) return;
                                if (ec) return self->fail(ec, "TLS handshake: " + ec.message());
                                self->run(self->fsm.connected(Clock::now()));
                              });
  }

  template <class Buffers, class Handler>
  void write(const std::shared_ptr<Connection>& c, const Buffers& b, Handler&& h) {
    if (c->tls)
      asio::async_write(c->stream, b, std::forward<Handler>(h));
    else
      asio::async_write(c->stream.next_layer(), b, std::forward<Handler>(h));
  }
  template <class Buffers, class Handler>
  void read_some(const std::shared_ptr<Connection>& c, const Buffers& b, Handler&& h) {
    if (c->tls)
      c->stream.async_read_some(b, std::forward<Handler>(h));
    else
      c->stream.next_layer().async_read_some(b, std::forward<Handler>(h));
  }

  void send_upgrade(const std::shared_ptr<Connection>& c) {
    const WsUrl& u = urls[c->url];
    key = detail::make_websocket_key();
    const bool default_port = (u.tls && u.port == "443") || (!u.tls && u.port == "80");
    std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    if (!default_port) host += ":" + u.port;
    c->request = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\n"
        "Sec-WebSocket-Version: 13\r\nUser-Agent: fanout\r\n",
        u.target, host, key);
    if (options.permessage_deflate)
      c->request += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    const bool own_authorization = std::any_of(options.headers.begin(), options.headers.end(), [](const auto& h) {
      return h.first.size() == 13 && strncasecmp(h.first.c_str(), "Authorization", 13) == 0;
    });
    if (!u.userinfo.empty() && !own_authorization) {
      std::string b64(4 * ((u.userinfo.size() + 2) / 3) + 1, '\0');
      const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                    reinterpret_cast<const unsigned char*>(u.userinfo.data()),
                                    static_cast<int>(u.userinfo.size()));
      b64.resize(static_cast<std::size_t>(n));
      c->request += fmt::format("Authorization: Basic {}\r\n", b64);
    }
    for (const auto& [k, v] : options.headers) c->request += fmt::format("{}: {}\r\n", k, v);
    c->request += "\r\n";
    write(c, asio::buffer(c->request), [self = shared_from_this(), c](const asio::error_code& ec, std::size_t) {
      if (c->closed) return;
      if (ec) return self->fail(ec, "send upgrade: " + ec.message());
      self->read_response(c);
    });
  }

  void read_response(const std::shared_ptr<Connection>& c) {
    auto handler = [self = shared_from_this(), c](const asio::error_code& ec, std::size_t n) {
      if (c->closed) return;
      if (ec) {
        if (ec == asio::error::eof) return self->fail(Errc::upstream_closed, "upgrade response: " + ec.message());
        return self->fail(ec, "upgrade response: " + ec.message());
      }
      self->on_response(c, n);
    };
    if (c->tls)
      asio::async_read_until(c->stream, c->head, "\r\n\r\n", handler);
    else
      asio::async_read_until(c->stream.next_layer(), c->head, "\r\n\r\n", handler);
  }

  static std::string lower(std::string_view s) {
    std::string r(s);
    for (auto& ch : r) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return r;
  }

  void on_response(const std::shared_ptr<Connection>& c, std::size_t head_len) {
    const std::string_view all(static_cast<const char*>(c->head.data().data()), c->head.size());
    const std::string_view head = all.substr(0, head_len);
    const auto line_end = head.find("\r\n");
    const auto status_line = head.substr(0, line_end);
    if (!status_line.starts_with("HTTP/1.1 101")) {
      count([](Stats& st) { ++st.bad_input; });
      return fail(Errc::handshake_rejected, fmt::format("upgrade refused: {}", status_line));
    }
    std::string accept, extensions;
    for (std::size_t p = line_end + 2; p < head.size();) {
      const auto e = head.find("\r\n", p);
      const auto line = head.substr(p, e - p);
      p = e == std::string_view::npos ? head.size() : e + 2;
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const auto name = lower(line.substr(0, colon));
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "sec-websocket-accept") accept = std::string(value);
      if (name == "sec-websocket-extensions") extensions = lower(value);
    }
    if (accept != detail::websocket_accept(key)) {
      count([](Stats& st) { ++st.bad_input; });
      return fail(Errc::bad_handshake_response, "upgrade: wrong Sec-WebSocket-Accept");
    }
    if (!extensions.empty()) {
      if (!options.permessage_deflate || extensions.find("permessage-deflate") == std::string::npos)
        return fail(Errc::bad_handshake_response, "upgrade: server chose an extension we did not offer: " + extensions);
      c->deflate = true;
      c->server_no_context_takeover = extensions.find("server_no_context_takeover") != std::string::npos;
      int bits = 15;
      if (auto p = extensions.find("server_max_window_bits="); p != std::string::npos)
        bits = std::clamp(std::atoi(extensions.c_str() + p + 23), 8, 15);
      c->pmd = std::make_unique<Inflater>(-bits);
    }
    std::string early(all.substr(head_len));  // frames that came with the head
    open_websocket(c);
    count([&](Stats& st) {
      ++st.connects;
      st.permessage_deflate = c->deflate;
    });
    run(fsm.handshake_done(Clock::now()));  // live: login and subscribe go out
    if (c->closed) return;
    if (!early.empty() && !feed(c, early.data(), early.size())) return;
    read_loop(c);
  }

  // ------------------------------------------------------------------ WebSocket

  void open_websocket(const std::shared_ptr<Connection>& c) {
    c->ws = std::make_unique<detail::FrameReader>(options.max_message_bytes, detail::FrameReader::Role::client);
    if (c->deflate) c->ws->allow_rsv1();
  }

  void read_loop(const std::shared_ptr<Connection>& c) {
    read_some(c, asio::buffer(c->in), [self = shared_from_this(), c](const asio::error_code& ec, std::size_t n) {
      if (c->closed) return;
      if (ec == asio::error::eof) return self->fail(Errc::upstream_closed, "closed by the server");
      if (ec) return self->fail(ec, "read: " + ec.message());
      if (!self->feed(c, c->in.data(), n)) return;
      self->read_loop(c);
    });
  }

  /// Runs bytes through the frame reader; false when the connection ended.
  bool feed(const std::shared_ptr<Connection>& c, const char* data, std::size_t n) {
    auto& ws = *c->ws;
    const bool framed = ws.feed(std::as_bytes(std::span(data, n)));
    if (ws.take_pings() + ws.take_pongs() > 0) fsm.message(Clock::now());  // they prove liveness too
    for (auto& m : ws.take_messages()) {
      if (c->closed) return false;
      handle_message(c, m);
    }
    if (c->closed) return false;
    if (!framed || ws.finished()) {
      const bool by_peer = ws.close_received();
      if (!by_peer) count([](Stats& st) { ++st.bad_input; });
      flush(c);  // our close frame, best effort
      if (by_peer)
        fail(Errc::upstream_closed, fmt::format("closed by the server ({})", ws.close_code_received()));
      else if (ws.close_code_sent() == static_cast<std::uint16_t>(CloseCode::message_too_big))
        fail(Errc::message_too_big, "message over max_message_bytes");
      else
        fail(Errc::protocol_error, "protocol error from the server");
      return false;
    }
    flush(c);
    return true;
  }

  void handle_message(const std::shared_ptr<Connection>& c, detail::FrameReader::Message& m) {
    fsm.message(Clock::now());
    if (m.op != Opcode::text && m.op != Opcode::binary) return;
    std::string_view payload = m.payload;
    bool binary = m.op == Opcode::binary;
    if (m.compressed) {
      c->scratch.clear();
      if (!c->pmd || !c->pmd->inflate(payload, true, options.max_message_bytes, c->scratch)) {
        count([](Stats& st) { ++st.bad_input; });
        return fail(Errc::inflate_error, "permessage-deflate: corrupt or oversize message");
      }
      if (c->server_no_context_takeover) c->pmd->reset();
      payload = c->scratch;
    }
    if (binary && options.inflate_binary == Inflate::gzip_or_zlib) {
      std::string inflated;
      binary_inflater.reset();
      if (!binary_inflater.inflate(payload, false, options.max_message_bytes, inflated)) {
        count([](Stats& st) { ++st.bad_input; });  // skipped, the stream goes on
        return;
      }
      c->scratch = std::move(inflated);
      payload = c->scratch;
      binary = false;
    }
    count([&](Stats& st) {
      ++st.messages;
      st.bytes += payload.size();
    });
    if (on_message) call_user([&] { on_message(payload, binary); });
  }

  void send(Opcode op, std::string_view text) {
    if (!conn || !conn->ws) return;
    conn->ws->send(op, text);
    flush(conn);
  }

  /// Writes what the frame reader produced (our frames, its pongs and close replies), one write at a time.
  void flush(const std::shared_ptr<Connection>& c) {
    if (c->closed || !c->ws) return;
    auto& out = c->ws->replies();
    if (c->write_busy || out.empty()) return;
    c->writing.swap(out);
    out.clear();
    c->write_busy = true;
    write(c, asio::buffer(c->writing), [self = shared_from_this(), c](const asio::error_code& ec, std::size_t) {
      c->write_busy = false;
      if (c->closed) return;
      if (ec) return self->fail(ec, "write: " + ec.message());
      self->flush(c);
    });
  }
};

Upstream::Upstream(asio::io_context& io, Options options, OnMessage on_message, OnEvent on_event)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(on_message), std::move(on_event))) {}

Upstream::~Upstream() {
  {
    // Waits for a callback running on another thread; on the loop's own thread (even inside a
    // callback) the recursive lock lets us through. After this no callback starts.
    std::lock_guard lock(impl_->callback_mutex);
    impl_->detached.store(true);
  }
  // Never wait for the loop: it may not run yet, or no more. The handlers own the Impl, so a start()
  // posted earlier finds it alive and detached; the sockets close on the loop, or with the io_context.
  if (impl_->io.get_executor().running_in_this_thread())
    impl_->stop();
  else
    asio::post(impl_->io, [impl = impl_] { impl->stop(); });
}

void Upstream::start() {
  asio::post(impl_->io, [impl = impl_] { impl->start(); });
}

void Upstream::stop() {
  auto impl = impl_;
  asio::post(impl->io, [impl] { impl->stop(); });
}

Upstream::State Upstream::state() const noexcept { return impl_->state.load(std::memory_order_relaxed); }

std::optional<std::size_t> Upstream::live_url() const noexcept {
  const std::size_t i = impl_->live_url.load(std::memory_order_relaxed);
  if (i == Impl::k_not_live) return std::nullopt;
  return i;
}

Upstream::Stats Upstream::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

}  // namespace fanout

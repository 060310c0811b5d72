// fanout-loadgen: one load-generating child process.
//
// A single-threaded, level-triggered epoll loop over up to k_max_conns_per_proc client sockets.
// (Raw epoll rather than asio: the per-readiness cost of asio's reactor ops is several times
// that of a bare epoll_wait + recv, and that cost dominates when a fan-out server sends one
// small frame to thousands of sockets at a time.)
//
// Hot path, per readable socket: one recv() into a process-wide scratch buffer (preceded by
// a memcpy of the connection's partial-frame carry, usually empty or a few bytes), frames
// parsed in place, text payloads scanned for "seq"/"ts"/"topic" at their fixed positions
// (memmem fallback), then per-(connection, topic) sequence bookkeeping and one histogram
// increment. No allocation per message; the carry buffer only grows to the largest partial
// frame seen and is then reused.
//
// Slow connections: SO_RCVBUF set before connect, removed from EPOLLIN once subscribed, and
// read from a 50 ms timer with a token bucket of --slow-read-bps.
#pragma once

#include <algorithm>
#include <csignal>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <fmt/format.h>
#include <zlib.h>

#include "common.hpp"
#include "histogram.hpp"
#include "tls.hpp"
#include "wsutil.hpp"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace fanout::loadgen {

struct Target {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_INET;
  std::string host_header;
  bool bind_src = false;
  uint32_t src_base = 0;  // host byte order
  uint32_t src_count = 0;
};

inline volatile std::sig_atomic_t g_stop = 0;
inline void on_stop_signal(int) { g_stop = 1; }

class Child {
 public:
  Child(const Options& o, const TopicPlan& plan, const Target& t, uint64_t first, uint64_t count, uint64_t slow_total,
        double rate, int up_fd, int down_fd)
      : o_(o),
        plan_(plan),
        t_(t),
        first_(first),
        n_(count),
        k_(plan.per_conn),
        m_(static_cast<uint32_t>(plan.names.size())),
        rate_(rate),
        up_(up_fd),
        down_(down_fd),
        rng_(static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^ realtime_us()) {
    conns_.resize(n_);
    for (uint64_t i = 0; i < n_; ++i) {
      Conn& c = conns_[i];
      c.slow = is_slow(first_ + i, o_.connections, slow_total);
      c.base = plan_.base_for(first_ + i);
      ++cls_[c.slow].conns;
    }
    ts_.resize(n_ * k_);
    topic_ids_.reserve(plan_.names.size() * 2);
    for (uint32_t g = 0; g < m_; ++g) topic_ids_.emplace(std::string_view(plan_.names[g]), g);
    if (o_.has_expect && o_.expect_per_topic > 0) pending_pairs_ = n_ * k_;
    scratch_.resize(k_scratch);
    if (o_.tls) tls_ = make_tls_context(o_);
    frame_buf_.reserve(256);
  }

  [[noreturn]] void run() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;  // no SA_RESTART: epoll_wait returns EINTR
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die("epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = k_down_tag;
    if (down_ >= 0) ::epoll_ctl(ep_, EPOLL_CTL_ADD, down_, &ev);

    start_ns_ = mono_ns();
    double setup_s = o_.setup_timeout_s;
    if (setup_s <= 0) setup_s = 30.0 + (rate_ > 0 ? static_cast<double>(n_) / rate_ : 0.0);
    setup_deadline_ns_ = start_ns_ + static_cast<uint64_t>(setup_s * 1e9);

    static constexpr int k_max_events = 512;
    epoll_event evs[k_max_events];
    while (!finished_) {
      pump_connects();
      pump_storm();
      check_ready();
      const int timeout = compute_timeout();
      const int k = ::epoll_wait(ep_, evs, k_max_events, timeout);
      if (k < 0 && errno != EINTR) die("epoll_wait");
      for (int i = 0; i < k; ++i) dispatch(evs[i]);
      timers();
    }
    finish();
  }

 private:
  enum class State : uint8_t { idle, connecting, handshake, subscribing, open, closed, failed };

  struct TopicState {
    uint64_t last = 0;
    uint64_t target = 0;  // after a storm: the seq the resubscribe ack named (caught up once last reaches it)
    uint64_t count = 0;
    uint64_t gaps = 0;
    uint64_t ooo = 0;
  };

  struct Conn {
    int fd = -1;
    State state = State::idle;
    bool slow = false;
    bool registered = false;
    bool recovering = false;  // reconnecting after the storm, subscribing with since
    uint32_t behind = 0;      // topics not yet caught up after the storm
    uint32_t mask = 0;
    uint32_t base = 0;
    uint32_t acks = 0;
    uint32_t hint = UINT32_MAX;
    uint32_t carry_len = 0;
    uint32_t carry_cap = 0;
    double budget = 0;
    double rpc_budget = 0;  // requests owed at --rpc-rate
    SSL* ssl = nullptr;     // --tls
    bool tls_pending = false;
    uint32_t tls_want = 0;
    std::unique_ptr<char[]> carry;
    std::string out;
    std::string accept;
  };

  struct ClassStats {
    uint64_t conns = 0;
    uint64_t opened = 0;
    uint64_t failed = 0;
    uint64_t msgs = 0;
    uint64_t bytes = 0;
    Histogram hist;
  };

  static constexpr uint64_t k_down_tag = UINT64_MAX;
  static constexpr size_t k_scratch = 256 * 1024;
  static constexpr size_t k_min_read = 64 * 1024;
  static constexpr uint64_t k_max_frame = 256ull << 20;
  z_stream z_{};  // --deflate: one inflate stream per process, reset per message
  bool z_ready_ = false;
  std::string inflated_;
  static constexpr uint32_t k_no_slot = UINT32_MAX;
  static constexpr uint64_t k_tick_ns = 50'000'000;

  [[noreturn]] static void die(const char* what) {
    fmt::print(stderr, "fanout-loadgen child: {}: {}\n", what, std::strerror(errno));
    ::_exit(3);
  }

  // ---------------------------------------------------------------- connection setup

  void pump_connects() {
    if (ready_sent_ || next_ >= n_) return;
    uint64_t allowed = n_;
    if (rate_ > 0) {
      const double el = static_cast<double>(mono_ns() - start_ns_) / 1e9;
      allowed = std::min<uint64_t>(n_, static_cast<uint64_t>(el * rate_) + 1);
    }
    while (next_ < allowed && inflight_ < o_.max_inflight) start_connect(static_cast<uint32_t>(next_++));
  }

  void start_connect(uint32_t i) {
    Conn& c = conns_[i];
    ++inflight_;
    c.state = State::connecting;
    const int fd = ::socket(t_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fail(i, fmt::format("socket:{}", errno_name(errno)));
      return;
    }
    c.fd = fd;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c.slow) {
      int rb = o_.slow_rcvbuf;
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    }
    if (t_.bind_src) {
      ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(t_.src_base + static_cast<uint32_t>((first_ + i) % t_.src_count));
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0) {
        fail(i, fmt::format("bind:{}", errno_name(errno)));
        return;
      }
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&t_.addr), t_.addr_len) == 0) {
      on_connected(i);
      return;
    }
    if (errno != EINPROGRESS) {
      fail(i, fmt::format("connect:{}", errno_name(errno)));
      return;
    }
    update_mask(i);
  }

  // ---------------------------------------------------------------- reconnect storm

  // Every open connection drops at once (no close frame, like a network blip) and reconnects.
  void start_storm() {
    storm_started_ = true;
    storm_ns_ = mono_ns();
    for (uint32_t i = 0; i < n_; ++i) {
      Conn& c = conns_[i];
      if (c.state != State::open) continue;
      close_socket(c);
      c.registered = false;
      c.carry.reset();
      c.carry_len = c.carry_cap = 0;
      std::string().swap(c.out);
      c.state = State::idle;
      c.acks = 0;
      c.recovering = true;
      storm_queue_.push_back(i);
    }
  }

  void pump_storm() {
    while (storm_next_ < storm_queue_.size() && inflight_ < o_.max_inflight) start_connect(storm_queue_[storm_next_++]);
  }

  void finish_connect(uint32_t i) {
    Conn& c = conns_[i];
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) {
      fail(i, fmt::format("connect:{}", errno_name(err)));
      return;
    }
    on_connected(i);
  }

  void on_connected(uint32_t i) {
    Conn& c = conns_[i];
    c.state = State::handshake;
    if (tls_ != nullptr) {
      start_tls(i);
      return;
    }
    send_upgrade(i);
  }

  // ---------------------------------------------------------------- TLS (--tls)

  // The TLS handshake runs in State::handshake before the HTTP upgrade (its failures count as
  // handshake failures). Afterwards reads and writes go through SSL_read/SSL_write on the same
  // non-blocking socket; epoll stays level-triggered, and a read drains what OpenSSL buffered.
  void start_tls(uint32_t i) {
    Conn& c = conns_[i];
    c.ssl = SSL_new(tls_);
    if (c.ssl == nullptr || SSL_set_fd(c.ssl, c.fd) != 1) {
      fail(i, "tls:setup");
      return;
    }
    SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_set_tlsext_host_name(c.ssl, o_.host.c_str());
    c.tls_pending = true;
    tls_step(i);
  }

  void tls_step(uint32_t i) {
    Conn& c = conns_[i];
    const int r = SSL_connect(c.ssl);
    if (r == 1) {
      c.tls_pending = false;
      ++tls_handshakes_;
      if (SSL_session_reused(c.ssl)) ++tls_resumed_;
      send_upgrade(i);
      return;
    }
    const int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      c.tls_want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
      update_mask(i);
      return;
    }
    ERR_clear_error();
    fail(i, "tls:handshake");
  }

  // send() or SSL_write(): bytes written, 0 when the socket is full, -1 (errno set) when it failed.
  ssize_t write_some(Conn& c, const char* p, size_t n) {
    if (c.ssl == nullptr) {
      const ssize_t w = ::send(c.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      return w < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : w;
    }
    const int w = SSL_write(c.ssl, p, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
    if (w > 0) return w;
    const int e = SSL_get_error(c.ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 0;
    ERR_clear_error();
    errno = EPIPE;
    return -1;
  }

  // recv() or SSL_read() until `room` is full or nothing more is there: bytes read, 0 when nothing
  // (errno EAGAIN) or at EOF (errno 0), -1 on error.
  ssize_t read_some(Conn& c, char* p, size_t room) {
    if (c.ssl == nullptr) {
      const ssize_t n = ::recv(c.fd, p, room, 0);
      if (n == 0) errno = 0;
      return n;
    }
    size_t got = 0;
    while (got < room) {
      const int r = SSL_read(c.ssl, p + got, static_cast<int>(std::min<size_t>(room - got, INT32_MAX)));
      if (r > 0) {
        got += static_cast<size_t>(r);
        continue;
      }
      const int e = SSL_get_error(c.ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      ERR_clear_error();
      if (got > 0) break;  // report the error on the next call
      errno = e == SSL_ERROR_ZERO_RETURN ? 0 : EPIPE;
      return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    if (got == 0) {
      errno = EAGAIN;
      return -1;
    }
    return static_cast<ssize_t>(got);
  }

  void close_socket(Conn& c) {
    if (c.ssl != nullptr) {
      SSL_free(c.ssl);
      c.ssl = nullptr;
    }
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    c.tls_pending = false;
  }

  void send_upgrade(uint32_t i) {
    Conn& c = conns_[i];
    uint8_t key[16];
    const uint64_t r1 = rng_.next(), r2 = rng_.next();
    std::memcpy(key, &r1, 8);
    std::memcpy(key + 8, &r2, 8);
    const std::string k64 = base64(key, sizeof key);
    c.accept = websocket_accept(k64);
    std::string path = o_.path;
    if (!o_.uid_prefix.empty()) {
      path += path.find('?') == std::string::npos ? "?uid=" : "&uid=";
      append_url_component(path, fmt::format("{}{}", o_.uid_prefix, first_ + i));
    }
    if (o_.url_mode) {
      path += path.find('?') == std::string::npos ? "?subscribe=" : "&subscribe=";
      for (uint32_t s = 0; s < k_; ++s) {
        if (s) path.push_back(',');
        append_url_component(path, plan_.names[plan_.gid(c.base, s)]);
      }
      if (o_.interval_ms) path += fmt::format("&interval_ms={}", o_.interval_ms);
    }
    const std::string req = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: fanout-loadgen\r\n{}\r\n",
        path, t_.host_header, k64,
        o_.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
    update_mask(i);
    send_bytes(i, req.data(), req.size());
  }

  // Returns bytes consumed from buf (or len if the connection was closed).
  size_t handle_handshake(uint32_t i, char* buf, size_t len) {
    Conn& c = conns_[i];
    const std::string_view s(buf, len);
    const size_t pos = s.find("\r\n\r\n");
    if (pos == std::string_view::npos) {
      if (len > 16384) fail(i, "handshake:too_large");
      return 0;
    }
    const std::string_view head = s.substr(0, pos);
    int status = 0;
    if (head.size() >= 12 && head.substr(0, 5) == "HTTP/") {
      const size_t sp = head.find(' ');
      if (sp != std::string_view::npos && sp + 4 <= head.size())
        for (size_t j = sp + 1; j < sp + 4; ++j) status = status * 10 + (head[j] - '0');
    }
    if (status != 101) {
      fail(i, fmt::format("http:{}", status));
      return len;
    }
    bool accept_ok = false;
    size_t line = head.find("\r\n");
    while (line != std::string_view::npos && !accept_ok) {
      const size_t start = line + 2;
      const size_t eol = std::min(head.find("\r\n", start), head.size());
      const std::string_view l = head.substr(start, eol - start);
      const size_t colon = l.find(':');
      if (colon != std::string_view::npos && colon == 20) {
        static constexpr std::string_view k_name = "sec-websocket-accept";
        bool eq = true;
        for (size_t j = 0; j < 20 && eq; ++j) eq = (l[j] | 0x20) == k_name[j];
        if (eq) {
          std::string_view v = l.substr(colon + 1);
          while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
          while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
          accept_ok = v == c.accept;
          if (!accept_ok) break;
        }
      }
      line = eol < head.size() ? eol : std::string_view::npos;
    }
    if (!accept_ok) {
      fail(i, "handshake:bad_accept");
      return len;
    }
    on_handshake_done(i);
    const size_t used = pos + 4;
    if (c.fd < 0) return len;
    return used + parse_frames(i, buf + used, len - used);
  }

  void on_handshake_done(uint32_t i) {
    Conn& c = conns_[i];
    c.state = State::subscribing;
    std::string().swap(c.accept);
    if (!o_.url_mode || c.recovering) {
      std::string payload = "{\"op\":\"subscribe\",\"args\":[";
      for (uint32_t s = 0; s < k_; ++s) {
        if (s) payload.push_back(',');
        append_json_string(payload, plan_.names[plan_.gid(c.base, s)]);
      }
      payload += "]";
      if (c.recovering) {
        payload += ",\"since\":{";
        for (uint32_t s = 0; s < k_; ++s) {
          if (s) payload.push_back(',');
          append_json_string(payload, plan_.names[plan_.gid(c.base, s)]);
          fmt::format_to(std::back_inserter(payload), ":{}", ts_[static_cast<size_t>(i) * k_ + s].last);
        }
        payload += "}";
      }
      if (o_.interval_ms) fmt::format_to(std::back_inserter(payload), ",\"interval_ms\":{}", o_.interval_ms);
      payload += "}";
      send_frame(i, 0x1, payload.data(), payload.size());
      if (c.fd < 0) return;
    }
    if (!o_.wait_acks) on_subscribed(i);
  }

  void on_subscribed(uint32_t i) {
    Conn& c = conns_[i];
    c.state = State::open;
    --inflight_;
    if (c.recovering) {
      ++storm_resubscribed_;
      storm_resubscribed_ns_ = mono_ns();
      c.behind = 0;
      for (uint32_t s = 0; s < k_; ++s) {
        const TopicState& t = ts_[static_cast<size_t>(i) * k_ + s];
        if (t.last < t.target) ++c.behind;
      }
      if (c.behind == 0) caught_up(i);
    } else {
      ++cls_[c.slow].opened;
      ++resolved_;
    }
    if (c.slow) {
      slow_list_.push_back(i);
      c.budget = 0;
    }
    update_mask(i);
  }

  void check_ready() {
    if (ready_sent_ || next_ < n_ || resolved_ < n_) return;
    ready_sent_ = true;
    ready_ns_ = mono_ns();
    const std::string msg = fmt::format("ready {} {} {}\n", cls_[0].opened + cls_[1].opened,
                                        cls_[0].failed + cls_[1].failed, (ready_ns_ - start_ns_) / 1000000);
    if (up_ >= 0) write_all(up_, msg.data(), msg.size());
  }

  void setup_timeout() {
    for (uint32_t i = 0; i < n_; ++i) {
      const State s = conns_[i].state;
      if (s == State::idle) {
        fail(i, "setup_timeout:not_started");
      } else if (s == State::connecting || s == State::handshake || s == State::subscribing) {
        fail(i, s == State::connecting  ? "setup_timeout:connect"
                : s == State::handshake ? "setup_timeout:handshake"
                                        : "setup_timeout:subscribe_ack");
      }
    }
    next_ = n_;
    check_ready();
  }

  // ---------------------------------------------------------------- event loop plumbing

  int compute_timeout() const {
    const uint64_t now = mono_ns();
    uint64_t dl = now + 100'000'000;
    if (!ready_sent_) dl = std::min(dl, setup_deadline_ns_);
    if (!ready_sent_ && rate_ > 0 && next_ < n_ && inflight_ < o_.max_inflight)
      dl = std::min(dl, start_ns_ + static_cast<uint64_t>(static_cast<double>(next_) / rate_ * 1e9));
    if (go_) dl = std::min(dl, run_deadline_ns_);
    if (!slow_list_.empty()) dl = std::min(dl, next_tick_ns_);
    if (go_ && o_.rpc_rate > 0) dl = std::min(dl, next_rpc_ns_);
    if (dl <= now) return 0;
    return static_cast<int>((dl - now + 999'999) / 1'000'000);
  }

  void timers() {
    const uint64_t now = mono_ns();
    if (!ready_sent_ && now >= setup_deadline_ns_) setup_timeout();
    if (go_ && now >= run_deadline_ns_) finished_ = true;
    if (go_ && o_.storm_at_s > 0 && !storm_started_ && now >= go_ns_ + static_cast<uint64_t>(o_.storm_at_s * 1e9))
      start_storm();
    if (go_ && o_.has_expect && pending_pairs_ == 0) finished_ = true;
    if (!slow_list_.empty() && now >= next_tick_ns_) slow_tick(now);
    if (go_ && o_.rpc_rate > 0 && now >= next_rpc_ns_) rpc_tick(now);
    if (g_stop || parent_gone_) finished_ = true;
  }

  void dispatch(const epoll_event& ev) {
    if (ev.data.u64 == k_down_tag) {
      char b[64];
      const ssize_t r = ::read(down_, b, sizeof b);
      if (r <= 0) {
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
        parent_gone_ = true;  // parent closed the pipe: stop now and report
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, down_, nullptr);
        return;
      }
      if (!go_ && std::memchr(b, 'g', static_cast<size_t>(r)) != nullptr) {
        go_ = true;
        go_ns_ = mono_ns();
        run_deadline_ns_ = go_ns_ + static_cast<uint64_t>(o_.duration_s * 1e9);
      }
      return;
    }
    const auto i = static_cast<uint32_t>(ev.data.u64);
    Conn& c = conns_[i];
    if (c.fd < 0) return;
    if (c.state == State::connecting) {
      finish_connect(i);
      return;
    }
    if (c.tls_pending) {
      tls_step(i);
      return;
    }
    if ((ev.events & EPOLLOUT) != 0) {
      flush(i);
      if (c.fd < 0) return;
    }
    if ((ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
      if (c.slow && c.state == State::open) {
        // Not polled for input; an error/hangup is terminal, so drain it now.
        if ((ev.events & (EPOLLERR | EPOLLHUP)) != 0)
          while (c.fd >= 0 && read_once(i, SIZE_MAX) > 0) {
          }
      } else {
        read_once(i, SIZE_MAX);
      }
    }
  }

  void update_mask(uint32_t i) {
    Conn& c = conns_[i];
    if (c.fd < 0) return;
    uint32_t want = 0;
    if (c.state == State::connecting) {
      want = EPOLLOUT;
    } else if (c.tls_pending) {
      want = c.tls_want;
    } else {
      if (!(c.slow && c.state == State::open)) want |= EPOLLIN;
      if (!c.out.empty()) want |= EPOLLOUT;
    }
    if (c.registered && want == c.mask) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = i;
    if (::epoll_ctl(ep_, c.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd, &ev) < 0) {
      fail_or_close(i, fmt::format("epoll_ctl:{}", errno_name(errno)));
      return;
    }
    c.registered = true;
    c.mask = want;
  }

  void send_bytes(uint32_t i, const char* p, size_t n) {
    Conn& c = conns_[i];
    if (c.fd < 0) return;
    if (!c.out.empty()) {
      c.out.append(p, n);
      return;
    }
    const ssize_t w = write_some(c, p, n);
    if (w < 0) {
      conn_lost(i, errno);
      return;
    }
    if (static_cast<size_t>(w) == n) return;
    c.out.append(p + w, n - static_cast<size_t>(w));
    update_mask(i);
  }

  void flush(uint32_t i) {
    Conn& c = conns_[i];
    size_t off = 0;
    while (off < c.out.size()) {
      const ssize_t w = write_some(c, c.out.data() + off, c.out.size() - off);
      if (w == 0) break;
      if (w < 0) {
        conn_lost(i, errno);
        return;
      }
      off += static_cast<size_t>(w);
    }
    c.out.erase(0, off);
    update_mask(i);
  }

  void send_frame(uint32_t i, uint8_t opcode, const char* payload, size_t n) {
    frame_buf_.clear();
    append_masked_frame(frame_buf_, opcode, payload, n, static_cast<uint32_t>(rng_.next()));
    send_bytes(i, frame_buf_.data(), frame_buf_.size());
  }

  // ---------------------------------------------------------------- reading and parsing

  // One recv of at most max_bytes; returns bytes read (0 if nothing / connection gone).
  ssize_t read_once(uint32_t i, size_t max_bytes) {
    Conn& c = conns_[i];
    const size_t need = std::max<size_t>(c.carry_len + k_min_read, grow_to_);
    if (scratch_.size() < need) scratch_.resize(need);
    grow_to_ = 0;
    char* buf = scratch_.data();
    if (c.carry_len) std::memcpy(buf, c.carry.get(), c.carry_len);
    const size_t room = std::min(scratch_.size() - c.carry_len, max_bytes);
    const ssize_t n = read_some(c, buf + c.carry_len, room);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      conn_lost(i, errno);
      return 0;
    }
    if (n == 0) {
      conn_lost(i, 0);
      return 0;
    }
    cls_[c.slow].bytes += static_cast<uint64_t>(n);
    const size_t total = c.carry_len + static_cast<size_t>(n);
    now_us_ = realtime_us();
    const size_t used = c.state == State::handshake ? handle_handshake(i, buf, total) : parse_frames(i, buf, total);
    if (c.fd < 0) return n;
    const size_t rest = total - used;
    if (rest > c.carry_cap) {
      const size_t cap = std::max<size_t>({rest, static_cast<size_t>(c.carry_cap) * 2, 256});
      c.carry = std::make_unique<char[]>(cap);
      c.carry_cap = static_cast<uint32_t>(cap);
    }
    if (rest) std::memmove(c.carry.get(), buf + used, rest);
    c.carry_len = static_cast<uint32_t>(rest);
    return n;
  }

  size_t parse_frames(uint32_t i, char* buf, size_t len) {
    size_t off = 0;
    while (len - off >= 2) {
      const auto* p = reinterpret_cast<const unsigned char*>(buf + off);
      const size_t avail = len - off;
      uint64_t plen = p[1] & 0x7f;
      size_t hdr = 2;
      if (plen == 126) {
        if (avail < 4) break;
        plen = (uint64_t{p[2]} << 8) | p[3];
        hdr = 4;
      } else if (plen == 127) {
        if (avail < 10) break;
        plen = 0;
        for (int b = 0; b < 8; ++b) plen = (plen << 8) | p[2 + b];
        hdr = 10;
      }
      const bool masked = (p[1] & 0x80) != 0;
      if (masked) hdr += 4;
      if (avail < hdr) break;
      if (plen > k_max_frame) {
        ++protocol_errors_;
        fail_or_close(i, "protocol:frame_too_large");
        return len;
      }
      if (avail - hdr < plen) {
        grow_to_ = std::max<size_t>(grow_to_, hdr + plen + k_min_read);
        break;
      }
      char* payload = buf + off + hdr;
      const uint8_t b0 = p[0];
      if (masked) {  // servers must not mask, but tolerate it
        ++protocol_errors_;
        const unsigned char* key = p + hdr - 4;
        for (uint64_t j = 0; j < plen; ++j)
          payload[j] = static_cast<char>(static_cast<unsigned char>(payload[j]) ^ key[j & 3]);
      }
      off += hdr + plen;
      handle_frame(i, b0, payload, static_cast<size_t>(plen));
      if (conns_[i].fd < 0) return len;
    }
    return off;
  }

  void handle_frame(uint32_t i, uint8_t b0, const char* payload, size_t n) {
    const bool fin = (b0 & 0x80) != 0;
    switch (b0 & 0x0f) {
      case 0x0:  // continuation: the message was accounted for on its first fragment
        break;
      case 0x1:
      case 0x2:
        if (!fin) ++fragmented_;
        if (b0 & 0x40) {  // permessage-deflate (--deflate): the client's cost, one inflate per message
          if (!inflate(payload, n)) {
            ++protocol_errors_;
            fail_or_close(i, "protocol:inflate");
            break;
          }
          on_message(i, inflated_.data(), inflated_.size());
          break;
        }
        on_message(i, payload, n);
        break;
      case 0x8: on_close_frame(i, payload, n); break;
      case 0x9:
        ++pings_;
        send_frame(i, 0xA, payload, n);
        break;
      case 0xA: break;
      default:
        ++protocol_errors_;
        fail_or_close(i, "protocol:bad_opcode");
        break;
    }
  }

  // Inflates one RSV1 message into inflated_ with a fresh context (the server answers
  // server_no_context_takeover); false when corrupt.
  bool inflate(const char* p, size_t n) {
    if (!z_ready_) {
      if (inflateInit2(&z_, -15) != Z_OK) return false;
      z_ready_ = true;
    }
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    inflated_.clear();
    bool ok = true;
    for (auto [in, len] : {std::pair{reinterpret_cast<const unsigned char*>(p), n}, std::pair{tail, size_t{4}}}) {
      z_.next_in = const_cast<unsigned char*>(in);
      z_.avail_in = static_cast<uInt>(len);
      while (ok && z_.avail_in > 0) {
        char out[16384];
        z_.next_out = reinterpret_cast<unsigned char*>(out);
        z_.avail_out = sizeof out;
        const int rc = ::inflate(&z_, Z_SYNC_FLUSH);
        inflated_.append(out, sizeof out - z_.avail_out);
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) ok = false;
        if (rc == Z_BUF_ERROR) break;
      }
    }
    inflateReset(&z_);
    return ok;
  }

  void on_message(uint32_t i, const char* p, size_t n) {
    if (n >= 9 && std::memcmp(p, "{\"event\":", 9) == 0) {
      on_event(i, p, n);
      return;
    }
    on_data(i, p, n);
  }

  void on_event(uint32_t i, const char* p, size_t n) {
    ++events_total_;
    std::string_view name = "?";
    if (n > 10 && p[9] == '"') {
      const char* q = static_cast<const char*>(std::memchr(p + 10, '"', n - 10));
      if (q != nullptr) name = std::string_view(p + 10, static_cast<size_t>(q - (p + 10)));
    }
    auto it = events_.find(name);
    if (it == events_.end()) it = events_.emplace(std::string(name), 0).first;
    ++it->second;
    Conn& c = conns_[i];
    if (name == "subscribe" && c.recovering) {
      // {"event":"subscribe","arg":"t","seq":S,...}: live messages after the replay have seq > S.
      const char* a = find(p, p + n, "\"arg\":\"", 7);
      const char* q = find(p, p + n, "\"seq\":", 6);
      if (a != nullptr && q != nullptr) {
        a += 7;
        const char* ae = static_cast<const char*>(std::memchr(a, '"', static_cast<size_t>(p + n - a)));
        uint64_t seq = 0;
        const uint32_t slot = ae ? slot_for(c, std::string_view(a, static_cast<size_t>(ae - a))) : k_no_slot;
        if (slot != k_no_slot && parse_u64(q + 6, p + n, seq)) ts_[static_cast<size_t>(i) * k_ + slot].target = seq;
      }
    }
    if (name == "rpc") {
      on_rpc_reply(p, n);
      return;
    }
    if (name == "error" && find(p, p + n, "\"op\":\"rpc\"", 11) != nullptr) {
      ++rpc_errors_;
      return;
    }
    if (name == "subscribe") {
      ++c.acks;
      if (c.state == State::subscribing && o_.wait_acks && c.acks >= k_) on_subscribed(i);
    } else if (name == "error" && c.state == State::subscribing) {
      fail_or_close(i, "subscribe:error_event");
    }
  }

  static const char* parse_u64(const char* p, const char* end, uint64_t& v) {
    v = 0;
    const char* s = p;
    while (p < end && static_cast<unsigned>(*p - '0') < 10u) v = v * 10 + static_cast<uint64_t>(*p++ - '0');
    return p == s ? nullptr : p;
  }

  static const char* find(const char* from, const char* end, const char* needle, size_t nlen) {
    if (from >= end) return nullptr;
    return static_cast<const char*>(::memmem(from, static_cast<size_t>(end - from), needle, nlen));
  }

  // Payload: {"seq":<n>,"ts":<unix us>,"topic":"<topic>","pad":"..."}
  void on_data(uint32_t i, const char* p, size_t n) {
    Conn& c = conns_[i];
    ClassStats& cs = cls_[c.slow];
    ++cs.msgs;
    if (first_msg_us_ == 0) first_msg_us_ = now_us_;
    last_msg_us_ = now_us_;
    const char* end = p + n;
    const char* q;
    if (n > 7 && std::memcmp(p, "{\"seq\":", 7) == 0) {
      q = p + 7;
    } else {
      q = find(p, end, "\"seq\":", 6);
      if (q == nullptr) {
        ++parse_errors_;
        return;
      }
      q += 6;
    }
    uint64_t seq = 0, ts = 0;
    q = parse_u64(q, end, seq);
    if (q == nullptr) {
      ++parse_errors_;
      return;
    }
    if (end - q > 6 && std::memcmp(q, ",\"ts\":", 6) == 0) {
      q += 6;
    } else {
      q = find(p, end, "\"ts\":", 5);
      if (q != nullptr) q += 5;
    }
    if (q != nullptr) q = parse_u64(q, end, ts);
    if (q == nullptr) {
      ++parse_errors_;
    } else {
      const int64_t lat = static_cast<int64_t>(now_us_) - static_cast<int64_t>(ts);
      if (lat < 0) ++neg_latency_;
      cs.hist.record(lat < 0 ? 0u : static_cast<uint64_t>(lat));
    }

    uint32_t slot = k_no_slot;
    const char* tq = nullptr;
    if (q != nullptr && end - q > 10 && std::memcmp(q, ",\"topic\":\"", 10) == 0) {
      tq = q + 10;
    } else {
      tq = find(p, end, "\"topic\":\"", 9);
      if (tq != nullptr) tq += 9;
    }
    if (tq != nullptr) {
      const char* te = static_cast<const char*>(std::memchr(tq, '"', static_cast<size_t>(end - tq)));
      if (te != nullptr) slot = slot_for(c, std::string_view(tq, static_cast<size_t>(te - tq)));
    } else if (k_ == 1) {
      slot = 0;
    }
    if (slot == k_no_slot) {
      ++unknown_topic_;
      return;
    }
    TopicState& t = ts_[static_cast<size_t>(i) * k_ + slot];
    const uint64_t prev = t.last;
    if (c.recovering && c.state == State::open && prev < t.target && seq >= t.target && --c.behind == 0) caught_up(i);
    // Gaps count from the first seq this connection saw on the topic: a client joins a stream that
    // started long ago, so the seqs before its first are not missing.
    const bool first = t.count++ == 0;
    if (first || seq == prev + 1) {
      t.last = seq;
    } else if (seq > prev) {
      t.gaps += seq - prev - 1;
      t.last = seq;
    } else {
      ++t.ooo;
    }
    if (o_.has_expect && prev < o_.expect_per_topic && t.last >= o_.expect_per_topic) --pending_pairs_;
  }

  // ---------------------------------------------------------------- two-way: rpc round trips

  // Every open connection sends rpc_rate requests/s, {"op":"rpc","id":N,"data":{"ts":<unix us>}},
  // spread over a 10 ms tick (each connection starts at a random phase of its period).
  void rpc_tick(uint64_t now) {
    const double dt = last_rpc_ns_ ? static_cast<double>(now - last_rpc_ns_) / 1e9 : 0.0;
    if (last_rpc_ns_ == 0)
      for (Conn& c : conns_) c.rpc_budget = static_cast<double>(rng_.next() % 1000) / 1000.0;
    last_rpc_ns_ = now;
    next_rpc_ns_ = now + 10'000'000;
    now_us_ = realtime_us();
    for (uint32_t i = 0; i < n_; ++i) {
      Conn& c = conns_[i];
      if (c.state != State::open || c.fd < 0) continue;
      c.rpc_budget += o_.rpc_rate * dt;
      for (; c.rpc_budget >= 1 && c.fd >= 0; c.rpc_budget -= 1) {
        const auto req = fmt::format(R"({{"op":"rpc","id":{},"data":{{"ts":{}}}}})", ++rpc_sent_, now_us_);
        send_frame(i, 0x1, req.data(), req.size());
      }
    }
  }

  // {"event":"rpc","id":N,"data":{"ts":T}}: the round trip is now - T.
  void on_rpc_reply(const char* p, size_t n) {
    const char* q = find(p, p + n, "\"ts\":", 5);
    uint64_t ts = 0;
    if (q == nullptr || parse_u64(q + 5, p + n, ts) == nullptr) {
      ++parse_errors_;
      return;
    }
    const int64_t lat = static_cast<int64_t>(now_us_) - static_cast<int64_t>(ts);
    rpc_hist_.record(lat < 0 ? 0u : static_cast<uint64_t>(lat));
  }

  void caught_up(uint32_t i) {
    conns_[i].recovering = false;
    ++storm_caught_up_;
    storm_caught_up_ns_ = mono_ns();
  }

  uint32_t slot_for(Conn& c, std::string_view topic) {
    uint32_t gid;
    if (c.hint != UINT32_MAX && plan_.names[c.hint] == topic) {
      gid = c.hint;
    } else {
      const auto it = topic_ids_.find(topic);
      if (it == topic_ids_.end()) return k_no_slot;
      gid = it->second;
      c.hint = gid;
    }
    const uint32_t slot = k_ == m_ && c.base == 0 ? gid : (gid + m_ - c.base) % m_;
    return slot < k_ ? slot : k_no_slot;
  }

  void on_close_frame(uint32_t i, const char* p, size_t n) {
    const int code = n >= 2 ? (static_cast<unsigned char>(p[0]) << 8) | static_cast<unsigned char>(p[1]) : 1005;
    ++close_codes_[code];
    const char reply[2] = {static_cast<char>((code >> 8) & 0xff), static_cast<char>(code & 0xff)};
    send_frame(i, 0x8, reply, n >= 2 ? 2 : 0);
    if (conns_[i].fd < 0) return;
    if (conns_[i].state == State::open)
      close_conn(i, State::closed);
    else
      fail(i, fmt::format("closed_during_setup:{}", code));
  }

  // Connection ended without a close frame (EOF or socket error): close code 1006.
  void conn_lost(uint32_t i, int err) {
    Conn& c = conns_[i];
    if (c.state == State::handshake || c.state == State::subscribing || c.state == State::open) ++close_codes_[1006];
    if (c.state == State::open)
      close_conn(i, State::closed);
    else
      fail(i, err == 0 ? std::string("eof_during_setup") : fmt::format("error_during_setup:{}", errno_name(err)));
  }

  void fail_or_close(uint32_t i, const std::string& reason) {
    if (conns_[i].state == State::open) {
      ++failures_after_open_[reason];
      close_conn(i, State::closed);
    } else {
      fail(i, reason);
    }
  }

  void fail(uint32_t i, const std::string& reason) {
    Conn& c = conns_[i];
    if (c.state == State::failed || c.state == State::closed) return;
    ++failures_[reason];
    ++cls_[c.slow].failed;
    close_conn(i, State::failed);
  }

  void close_conn(uint32_t i, State final_state) {
    Conn& c = conns_[i];
    if (c.state == State::closed || c.state == State::failed) return;
    close_socket(c);
    c.registered = false;
    const State was = c.state;
    const bool inflight = was == State::connecting || was == State::handshake || was == State::subscribing;
    const bool unresolved = inflight || was == State::idle;
    if (inflight) --inflight_;
    if (unresolved) ++resolved_;
    if (was == State::open && final_state == State::closed) ++closed_after_open_;
    c.state = final_state;
    if (o_.has_expect) {
      for (uint32_t s = 0; s < k_; ++s)
        if (ts_[static_cast<size_t>(i) * k_ + s].last < o_.expect_per_topic) --pending_pairs_;
    }
    c.carry.reset();
    c.carry_len = c.carry_cap = 0;
    std::string().swap(c.out);
  }

  void slow_tick(uint64_t now) {
    const double dt = last_tick_ns_ ? static_cast<double>(now - last_tick_ns_) / 1e9 : k_tick_ns / 1e9;
    last_tick_ns_ = now;
    next_tick_ns_ = now + k_tick_ns;
    const double add = o_.slow_read_bps * dt;
    const double cap = 2 * add + 1;
    size_t w = 0;
    for (size_t r = 0; r < slow_list_.size(); ++r) {
      const uint32_t i = slow_list_[r];
      Conn& c = conns_[i];
      if (c.fd < 0) continue;
      c.budget = std::min(c.budget + add, cap);
      if (c.budget >= 1) {
        const ssize_t got = read_once(i, static_cast<size_t>(c.budget));
        if (got > 0) c.budget -= static_cast<double>(got);
      }
      if (c.fd >= 0) slow_list_[w++] = i;
    }
    slow_list_.resize(w);
  }

  // ---------------------------------------------------------------- report

  [[noreturn]] void finish() {
    const uint64_t end_ns = mono_ns();
    std::string r;
    r.reserve(64 * 1024);
    auto kv = [&r](std::string_view k, uint64_t v) { fmt::format_to(std::back_inserter(r), "k {} {}\n", k, v); };
    r += "result\n";
    static constexpr const char* k_class_names[2] = {"fast", "slow"};
    for (int s = 0; s < 2; ++s) {
      const ClassStats& cs = cls_[s];
      uint64_t gaps = 0, ooo = 0, incomplete = 0, missing = 0, complete = 0;
      for (uint64_t i = 0; i < n_; ++i) {
        const Conn& c = conns_[i];
        if (c.slow != (s == 1)) continue;
        const bool opened = c.state == State::open || c.state == State::closed;
        bool ok = opened;
        for (uint32_t k = 0; k < k_; ++k) {
          const TopicState& t = ts_[i * k_ + k];
          gaps += t.gaps;
          ooo += t.ooo;
          if (o_.has_expect) {
            if (t.count < o_.expect_per_topic) missing += o_.expect_per_topic - t.count;
            if (t.count != o_.expect_per_topic || t.last != o_.expect_per_topic || t.gaps || t.ooo) ok = false;
          }
        }
        if (o_.has_expect && opened) ++(ok ? complete : incomplete);
      }
      const std::string_view n = k_class_names[s];
      kv(fmt::format("conns_{}", n), cs.conns);
      kv(fmt::format("opened_{}", n), cs.opened);
      kv(fmt::format("failed_{}", n), cs.failed);
      kv(fmt::format("msgs_{}", n), cs.msgs);
      kv(fmt::format("bytes_{}", n), cs.bytes);
      kv(fmt::format("gaps_{}", n), gaps);
      kv(fmt::format("ooo_{}", n), ooo);
      kv(fmt::format("incomplete_{}", n), incomplete);
      kv(fmt::format("complete_{}", n), complete);
      kv(fmt::format("missing_{}", n), missing);
      const Histogram& h = cs.hist;
      fmt::format_to(std::back_inserter(r), "hm {} {} {} {} {}\n", s, h.total(), h.sum(), h.max(), h.clamped());
      for (size_t b = 0; b < Histogram::k_buckets; ++b)
        if (h.count_at(b)) fmt::format_to(std::back_inserter(r), "h {} {} {}\n", s, b, h.count_at(b));
    }
    fmt::format_to(std::back_inserter(r), "hm 2 {} {} {} {}\n", rpc_hist_.total(), rpc_hist_.sum(), rpc_hist_.max(),
                   rpc_hist_.clamped());
    for (size_t b = 0; b < Histogram::k_buckets; ++b)
      if (rpc_hist_.count_at(b)) fmt::format_to(std::back_inserter(r), "h 2 {} {}\n", b, rpc_hist_.count_at(b));
    kv("tls_handshakes", tls_handshakes_);
    kv("rpc_sent", rpc_sent_);
    kv("rpc_errors", rpc_errors_);
    kv("control_events", events_total_);
    kv("parse_errors", parse_errors_);
    kv("unknown_topic", unknown_topic_);
    kv("fragmented", fragmented_);
    kv("pings", pings_);
    kv("protocol_errors", protocol_errors_);
    kv("negative_latency", neg_latency_);
    kv("closed_by_server", closed_after_open_);
    kv("storm_conns", storm_queue_.size());
    kv("storm_resubscribed", storm_resubscribed_);
    kv("storm_caught_up", storm_caught_up_);
    kv("storm_resubscribed_ms_max",
       storm_resubscribed_ns_ > storm_ns_ ? (storm_resubscribed_ns_ - storm_ns_) / 1000000 : 0);
    kv("storm_caught_up_ms_max", storm_caught_up_ns_ > storm_ns_ ? (storm_caught_up_ns_ - storm_ns_) / 1000000 : 0);
    kv("first_msg_us_min", first_msg_us_);
    kv("last_msg_us_max", last_msg_us_);
    kv("setup_ms_max", ready_ns_ ? (ready_ns_ - start_ns_) / 1000000 : 0);
    kv("run_ms_max", go_ns_ ? (end_ns - go_ns_) / 1000000 : 0);
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    kv("cpu_user_us",
       static_cast<uint64_t>(ru.ru_utime.tv_sec) * 1000000u + static_cast<uint64_t>(ru.ru_utime.tv_usec));
    kv("cpu_sys_us", static_cast<uint64_t>(ru.ru_stime.tv_sec) * 1000000u + static_cast<uint64_t>(ru.ru_stime.tv_usec));
    kv("maxrss_kb_max", static_cast<uint64_t>(ru.ru_maxrss));
    for (const auto& [code, cnt] : close_codes_) fmt::format_to(std::back_inserter(r), "cc {} {}\n", code, cnt);
    for (const auto& [name, cnt] : events_) fmt::format_to(std::back_inserter(r), "ev {} {}\n", sanitize(name), cnt);
    for (const auto& [name, cnt] : failures_) fmt::format_to(std::back_inserter(r), "fr {} {}\n", sanitize(name), cnt);
    for (const auto& [name, cnt] : failures_after_open_)
      fmt::format_to(std::back_inserter(r), "fo {} {}\n", sanitize(name), cnt);
    r += "end\n";
    if (up_ >= 0) write_all(up_, r.data(), r.size());

    // Best-effort graceful close, then let process exit close every socket.
    std::string cf;
    for (uint32_t i = 0; i < n_; ++i) {
      Conn& c = conns_[i];
      if (c.fd < 0) continue;
      if (c.state == State::open && c.out.empty()) {
        cf.clear();
        const char code[2] = {0x03, static_cast<char>(0xE8)};  // 1000
        append_masked_frame(cf, 0x8, code, 2, static_cast<uint32_t>(rng_.next()));
        (void)write_some(c, cf.data(), cf.size());
      }
      close_socket(c);
    }
    ::_exit(0);
  }

  static std::string sanitize(std::string_view s) {
    std::string out(s.empty() ? std::string_view("?") : s);
    for (char& ch : out)
      if (static_cast<unsigned char>(ch) <= ' ' || ch == '"' || ch == '\\') ch = '_';
    return out;
  }

  const Options& o_;
  const TopicPlan& plan_;
  const Target& t_;
  const uint64_t first_;
  const uint64_t n_;
  const uint32_t k_;
  const uint32_t m_;
  const double rate_;
  const int up_;
  const int down_;
  Rng rng_;
  int ep_ = -1;

  std::vector<Conn> conns_;
  std::vector<TopicState> ts_;
  std::unordered_map<std::string_view, uint32_t> topic_ids_;
  std::vector<uint32_t> slow_list_;
  std::vector<char> scratch_;
  size_t grow_to_ = 0;
  std::string frame_buf_;
  uint64_t now_us_ = 0;

  uint64_t next_ = 0;
  uint64_t inflight_ = 0;
  uint64_t resolved_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t setup_deadline_ns_ = 0;
  uint64_t ready_ns_ = 0;
  uint64_t go_ns_ = 0;
  uint64_t run_deadline_ns_ = 0;
  uint64_t next_tick_ns_ = 0;
  uint64_t last_tick_ns_ = 0;
  uint64_t pending_pairs_ = 0;
  bool ready_sent_ = false;
  bool go_ = false;
  bool finished_ = false;
  bool parent_gone_ = false;
  bool storm_started_ = false;
  uint64_t storm_ns_ = 0;
  std::vector<uint32_t> storm_queue_;
  size_t storm_next_ = 0;
  uint64_t storm_resubscribed_ = 0;
  uint64_t storm_caught_up_ = 0;
  uint64_t storm_resubscribed_ns_ = 0;
  uint64_t storm_caught_up_ns_ = 0;

  ClassStats cls_[2];
  SSL_CTX* tls_ = nullptr;  // --tls: one context per process
  uint64_t tls_handshakes_ = 0;
  uint64_t tls_resumed_ = 0;
  Histogram rpc_hist_;
  uint64_t rpc_sent_ = 0;
  uint64_t rpc_errors_ = 0;
  uint64_t next_rpc_ns_ = 0;
  uint64_t last_rpc_ns_ = 0;
  uint64_t events_total_ = 0;
  uint64_t parse_errors_ = 0;
  uint64_t unknown_topic_ = 0;
  uint64_t fragmented_ = 0;
  uint64_t pings_ = 0;
  uint64_t protocol_errors_ = 0;
  uint64_t neg_latency_ = 0;
  uint64_t closed_after_open_ = 0;
  uint64_t first_msg_us_ = 0;
  uint64_t last_msg_us_ = 0;
  std::map<std::string, uint64_t, std::less<>> events_;
  std::map<std::string, uint64_t, std::less<>> failures_;
  std::map<std::string, uint64_t, std::less<>> failures_after_open_;
  std::map<int, uint64_t> close_codes_;
};

}  // namespace fanout::loadgen

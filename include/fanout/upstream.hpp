// fanout/upstream.hpp — a WebSocket client for an upstream feed that keeps itself connected.
//
// ws:// and wss:// (SNI, certificate verification against the system store or a given CA file),
// custom request headers, login and subscribe messages re-sent on every connect, liveness by
// WebSocket ping or an application heartbeat ("ping" -> "pong"), a stale-stream timeout, reconnect
// with capped exponential backoff and jitter over several endpoints in order (nats.c-style knobs:
// attempt limit, custom delay, callbacks on connect, disconnect and reconnect), and
// permessage-deflate (RFC 7692) or gzip/zlib-compressed binary frames inflated on request.
//
// The connection logic is an I/O-free state machine (fanout/detail/upstream_fsm.hpp, unit-tested
// with a fake clock); this class drives it with Asio and one timer at its next deadline. Errors are
// std::error_codes: fanout::Errc (error.hpp) for what fanout decides (connect_timeout, stale_stream,
// handshake_rejected, upstream_closed, max_attempts_reached ...), the system's or asio's for the
// network (connection_refused, TLS), each with a human reason beside it for logs.
//
//   fanout::Upstream up(io, {.urls = {"wss://ws.okx.com:8443/ws/v5/public"},
//                            .subscribe =
//                            {R"({"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]})"}},
//                       [&](std::string_view msg, bool binary) { /* route and publish */ },
//                       [&](const fanout::Upstream::Event& e) { /* log state changes */ });
//   up.start();
//
// Reconnect knobs, nats.c-style (see Options):
//   o.max_reconnect_attempts = 10;  // then Event{State::stopped, .error = Errc::max_attempts_reached}
//   o.on_disconnect = [](std::error_code ec, std::string_view why) {
//     if (ec == fanout::Errc::stale_stream) { /* the feed went quiet */ }
//   };
//
// Thread safety: start(), stop(), stats() and state() from any thread. The callbacks run on the
// io_context's thread; the message view is valid during the call only. The destructor may run on any
// thread, also before the loop ever ran, after it stopped, or inside a callback: it never waits for the
// loop, and no callback starts after it returns (one already running on another thread is waited for).
// The sockets are closed on the loop when it next runs, or when the io_context is destroyed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>

#include "fanout/export.hpp"

namespace fanout {

class FANOUT_API Upstream {
 public:
  enum class Heartbeat { none, ws_ping, text };
  enum class Inflate { none, gzip_or_zlib };

  struct Options {
    std::vector<std::string> urls;                               // tried in this order
    std::vector<std::pair<std::string, std::string>> headers{};  // extra request headers
    std::string login{};                                         // sent first on every connect
    std::vector<std::string> subscribe{};                        // then these, on every connect
    Heartbeat heartbeat = Heartbeat::text;
    std::string heartbeat_text = "ping";  // for Heartbeat::text
    std::chrono::milliseconds heartbeat_interval = std::chrono::seconds(15);
    std::chrono::milliseconds stale_timeout = std::chrono::seconds(30);    // no message: reconnect; 0 off
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);  // TCP + TLS + upgrade
    // Reconnect. The wait before retry n (1 = after the first failure) is
    // min(backoff_max, backoff_initial x 2^(n-1)) x (1 - jitter + jitter x uniform[0,1)), or
    // custom_delay(n) when set. A failed attempt moves to the next URL; a connection that stayed
    // live for stable_after resets n and is retried on the same URL first. Accepted-then-closed at
    // once counts as a failure, so such a server sees the wait grow.
    std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(250);
    std::chrono::milliseconds backoff_max = std::chrono::seconds(30);
    double jitter = 1.0;  // random share of the wait, 0..1: 1 full jitter [0, d], 0 exactly d
    std::function<std::chrono::milliseconds(unsigned attempt)> custom_delay{};  // replaces the above
    int max_reconnect_attempts = -1;  // failures in a row before giving up (state stopped,
                                      // Errc::max_attempts_reached); -1 forever, 0 no retry
    std::chrono::milliseconds stable_after = std::chrono::seconds(5);  // live this long: n starts over
    std::string ca_file{};                                             // PEM CA bundle; empty: the system store
    bool insecure_skip_verify = false;                                 // tests only: accept any certificate
    bool permessage_deflate = true;                                    // offer RFC 7692 compression
    Inflate inflate_binary = Inflate::none;    // binary frames that are gzip/zlib data become text
    std::size_t max_message_bytes = 16 << 20;  // after inflation; larger closes and reconnects
    std::string name = "upstream";             // in events, for logs
    // Hot standby (several Upstreams on one stream, e.g. the relay's standby = true): the URL the
    // first attempt goes to, and URLs to pass over when moving on after a failure (true: skip it,
    // e.g. a partner is live there; when every other one is skipped the same URL is retried). So a
    // pair started at 0 and 1, each avoiding the other's live_url(), stays on two endpoints.
    std::size_t first_url = 0;                         // index into urls (modulo its size)
    std::function<bool(std::size_t url)> avoid_url{};  // on the io_context's thread
    // Callbacks, on the io_context's thread, beside OnEvent (which sees every state change).
    std::function<void(const std::string& url)> on_connect{};    // first live connection after start()
    std::function<void(const std::string& url)> on_reconnect{};  // live again after a lost connection
    std::function<void(std::error_code, std::string_view reason)> on_disconnect{};  // a live one ended
  };

  enum class State { stopped, connecting, live, backing_off };

  /// A state change, for logs and metrics.
  // Every URL and reason this class hands out (events, stats, on_connect/on_reconnect) has its
  // credentials redacted (fanout/redact.hpp): they are meant for logs and status pages.
  struct Event {
    State state;
    std::string url;
    std::string reason;                     // why a connection ended, or a failure: for logs
    std::chrono::milliseconds retry_in{0};  // for backing_off
    std::error_code error{};                // the same, for code: fanout::Errc, system or asio codes
    unsigned failures_in_row = 0;           // attempts or unstable connections that failed in a row
  };

  struct Stats {
    State state = State::stopped;
    std::uint64_t connects = 0;  // upgrades that succeeded
    std::uint64_t failures = 0;  // attempts or connections that ended in error
    std::uint64_t messages = 0;  // data messages handed to the callback
    std::uint64_t bytes = 0;     // their payload bytes (after inflation)
    std::uint64_t heartbeats_sent = 0;
    std::uint64_t bad_input = 0;      // protocol errors, inflate errors, oversize messages
    std::string url;                  // current or last endpoint
    bool permessage_deflate = false;  // the current connection agreed on compression
    std::error_code last_error{};     // why the last attempt or connection failed
    std::string last_reason{};        // the same, for logs
  };

  using OnMessage = std::function<void(std::string_view payload, bool binary)>;
  using OnEvent = std::function<void(const Event&)>;

  /// Throws std::invalid_argument for an empty or malformed URL list.
  Upstream(asio::io_context& io, Options options, OnMessage on_message, OnEvent on_event = {});
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  /// Connects, and keeps connecting until stop() or max_reconnect_attempts. Again after a stop: afresh.
  void start();
  /// Closes the connection and stops reconnecting. Safe to call more than once.
  void stop();
  Stats stats() const;
  State state() const noexcept;
  /// The index in Options::urls of the live connection; nullopt while not live. Any thread.
  std::optional<std::size_t> live_url() const noexcept;

  static const char* to_string(State s) noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with pending handlers: it may outlive the Upstream
};

/// A parsed ws:// or wss:// URL.
struct FANOUT_API WsUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target = "/";  // path and query
  std::string userinfo{};    // "user:password" (percent-decoded): sent as Authorization: Basic
};
/// Parses ws[s]://[user:password@]host[:port][/path][?query]; IPv6 hosts in brackets. Throws
/// std::invalid_argument (whose message has the URL's credentials redacted).
FANOUT_API WsUrl parse_ws_url(std::string_view url);

}  // namespace fanout

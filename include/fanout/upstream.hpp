// fanout/upstream.hpp — a WebSocket client for an upstream feed that keeps itself connected.
//
// ws:// and wss:// (SNI, certificate verification against the system store or a given CA file),
// custom request headers, login and subscribe messages re-sent on every connect, liveness by
// WebSocket ping or an application heartbeat ("ping" -> "pong"), a stale-stream timeout, reconnect
// with capped exponential backoff and full jitter over several endpoints in order, and
// permessage-deflate (RFC 7692) or gzip/zlib-compressed binary frames inflated on request.
//
//   fanout::Upstream up(io, {.urls = {"wss://ws.okx.com:8443/ws/v5/public"},
//                            .subscribe =
//                            {R"({"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]})"}},
//                       [&](std::string_view msg, bool binary) { /* route and publish */ },
//                       [&](const fanout::Upstream::Event& e) { /* log state changes */ });
//   up.start();
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
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>

namespace fanout {

class Upstream {
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
    std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(250);
    std::chrono::milliseconds backoff_max = std::chrono::seconds(30);
    std::string ca_file{};                     // PEM CA bundle; empty: the system store
    bool insecure_skip_verify = false;         // tests only: accept any certificate
    bool permessage_deflate = true;            // offer RFC 7692 compression
    Inflate inflate_binary = Inflate::none;    // binary frames that are gzip/zlib data become text
    std::size_t max_message_bytes = 16 << 20;  // after inflation; larger closes and reconnects
    std::string name = "upstream";             // in events, for logs
  };

  enum class State { stopped, connecting, live, backing_off };

  /// A state change, for logs and metrics.
  struct Event {
    State state;
    std::string url;
    std::string reason;                     // why a connection ended, or a failure
    std::chrono::milliseconds retry_in{0};  // for backing_off
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
  };

  using OnMessage = std::function<void(std::string_view payload, bool binary)>;
  using OnEvent = std::function<void(const Event&)>;

  /// Throws std::invalid_argument for an empty or malformed URL list.
  Upstream(asio::io_context& io, Options options, OnMessage on_message, OnEvent on_event = {});
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  void start();
  /// Closes the connection and stops reconnecting. Safe to call more than once.
  void stop();
  Stats stats() const;
  State state() const noexcept;

  static const char* to_string(State s) noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with pending handlers: it may outlive the Upstream
};

/// A parsed ws:// or wss:// URL.
struct WsUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target = "/";  // path and query
};
/// Parses ws[s]://host[:port][/path][?query]; IPv6 hosts in brackets. Throws std::invalid_argument.
WsUrl parse_ws_url(std::string_view url);

}  // namespace fanout

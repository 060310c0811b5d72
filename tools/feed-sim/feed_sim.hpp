// fanout-feed-sim: an OKX-like public market-data WebSocket server, for tests and benchmarks.
//
// Deliberately independent of the fanout library (its own HTTP upgrade, its own frame encoder,
// wslay for parsing client frames, OpenSSL for SHA-1, simdjson for client requests), so fanout's
// upstream client is tested against WebSocket code it does not share. Files: feed_sim.cpp (streams,
// ticks, this facade), core.hpp (the state they share), session.cpp (one connection), upgrade.cpp
// (HTTP and the WebSocket handshake), wire.cpp (frames and compression), request.cpp (what clients
// ask for).
//
// Protocol, as a client sees it:
//   -> {"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}
//   <- {"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"1a2b3c4d"}
//   <- {"arg":{"channel":"tickers","instId":"BTC-USDT"},
//       "data":[{"instId":"BTC-USDT","last":"64000.1","seq":123,"ts":1700000000000000,"pad":"..."}]}
//   -> ping                                     <- pong
//   -> anything malformed                       <- {"event":"error","code":"60012","msg":"Invalid request: ..."}
// Every (channel, instId) is one stream with a seq counter global to the simulator; each message is
// generated once per tick and the same bytes go to every subscriber, so two connections on the same
// stream see identical messages (what hot-standby dedupe relies on). A stream, once it exists, keeps
// ticking (seq advances) whether or not anyone is subscribed, like a real exchange, so a client that
// reconnects sees the gap. `ts` is the send time in unix microseconds.
//
// Usage:
//   fanout::sim::FeedSimulator sim({.port = 0, .rate = 100});
//   sim.start();                       // binds (throws on failure), then serves on its own thread
//   connect_to(sim.port());
//   sim.drop_connections();            // misbehave on demand
//   sim.stop();
//
// Threads: start() and stop() from one controlling thread. Every other member function may be
// called from any thread, including from inside the simulator; the misbehaviour methods run on the
// simulator's thread and return once applied (so a test can act on the result right away).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fanout::sim {

class FeedSimulator {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9765;  // 0 picks a free port; read it back with port()
    double rate = 10.0;         // messages per second per stream; 0 pauses every stream
    std::size_t size = 200;     // approximate size of a data message (padded with "pad")
    std::string tls_cert{};     // PEM files; both set means wss, neither means ws
    std::string tls_key{};
    bool deflate = false;      // accept permessage-deflate offers (no context takeover both ways)
    bool gzip_binary = false;  // data messages as gzip-compressed binary frames
    // Streams ("tickers", instId) that exist from start(); any other is created on first subscribe.
    // Also served as JSON to a plain HTTP GET on any path.
    std::vector<std::string> instruments = {"BTC-USDT", "ETH-USDT"};
    std::chrono::milliseconds handshake_delay{0};        // wait before the HTTP 101
    std::chrono::milliseconds handshake_timeout{10000};  // TLS + request head must arrive by then
    std::size_t max_queued_bytes = 8u << 20;             // a client further behind than this is dropped
    std::size_t max_message_bytes = 1u << 20;            // largest client message (after inflating)
    std::size_t max_streams = 100000;                    // subscribing to more distinct streams is an error
    bool verbose = false;                                // log connections and errors to stderr
  };

  struct Stats {
    std::size_t connections = 0;          // open WebSocket connections
    std::size_t subscriptions = 0;        // (connection, stream) pairs
    std::uint64_t messages_sent = 0;      // data messages queued to connections
    std::uint64_t bytes_sent = 0;         // bytes written to sockets (frames, HTTP, TLS excluded)
    std::size_t streams = 0;              // streams ticking
    std::uint64_t connections_total = 0;  // WebSocket handshakes completed since start
    std::uint64_t slow_drops = 0;         // clients dropped for exceeding max_queued_bytes
    double rate = 0;                      // current per-stream rate
    bool silent = false;
  };

  explicit FeedSimulator(Options options);
  ~FeedSimulator();  // stops
  FeedSimulator(const FeedSimulator&) = delete;
  FeedSimulator& operator=(const FeedSimulator&) = delete;

  // Binds and listens (std::system_error on failure, std::invalid_argument on bad options),
  // then runs its own io_context on a thread of its own. Call once.
  void start();
  // Closes every connection abruptly and joins the thread. Idempotent.
  void stop();
  // The bound port (the chosen one when Options::port was 0); valid after start().
  std::uint16_t port() const;

  // Misbehaviour. Each returns the number of connections affected where that means something.
  std::size_t drop_connections();     // TCP reset, no close frame, no TLS close_notify; all connections
  std::size_t drop_one_connection();  // the same, for the oldest open WebSocket connection only (0 or 1)
  void set_silent(bool on);           // no data, no acks, no pongs (text or WebSocket) while on
  std::size_t send_garbage_json();    // one text frame of invalid JSON to each open connection
  std::size_t send_garbage_frame();   // one frame with reserved opcode 0x3 to each open connection
  void set_handshake_delay(std::chrono::milliseconds delay);  // for handshakes from now on
  void set_rate(double per_second);                           // per stream; 0 pauses (seq stops advancing)

  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One JSON object on one line: {"connections":1,"subscriptions":2,"messages_sent":345,...}
std::string to_json(const FeedSimulator::Stats& stats);

}  // namespace fanout::sim

// fanout/server.hpp — accepts downstream clients: WebSocket upgrades on configured paths, a few
// plain HTTP answers (GET /healthz and the application's http_routes, POST among them where
// max_request_body_bytes allows bodies), plain TCP or TLS.
//
// One SO_REUSEPORT acceptor per shard, so the kernel spreads connections and a session stays on the
// shard that accepted it. The request head is parsed strictly (size limit, handshake deadline);
// anything that is not a valid upgrade on a served path gets 400/404/405/426 and is closed.
//
//   fanout::Runtime rt({.shards = 1});
//   fanout::Hub hub(rt);
//   fanout::Server server(rt, hub, {.host = "0.0.0.0", .port = 8080, .paths = {"/ws"}});
//   rt.start();   // clients: ws://host:8080/ws?subscribe=ticker   or   {"op":"subscribe","args":["ticker"]}
//
// Thread safety: construct and destroy on a controlling thread (not a shard thread); port(), stats()
// and the Drainable functions from any thread. Callbacks run on the session's shard thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fanout/auth.hpp"
#include "fanout/connect.hpp"
#include "fanout/export.hpp"
#include "fanout/http.hpp"
#include "fanout/metrics.hpp"
#include "fanout/rpc.hpp"
#include "fanout/runtime.hpp"
#include "fanout/session.hpp"

namespace asio::ssl {
class context;
}

namespace fanout {

class Hub;
class Gateway;
namespace detail {
class ServerShard;
struct ServerSnapshot;
struct Admission;
}  // namespace detail

/// The default of Server::Options::queue_budget_bytes: 256 MiB or a tenth of the memory the process
/// may use (physical RAM, or its cgroup's memory limit when lower), whichever is smaller.
FANOUT_API std::size_t default_queue_budget() noexcept;

class FANOUT_API Server final : public Drainable {
 public:
  struct Tls {
    std::string cert_file;  // PEM certificate chain
    std::string key_file;   // PEM private key
    // TLS 1.3 connections: after OpenSSL's handshake fanout seals and opens the records itself
    // (AES-GCM / ChaCha20-Poly1305 through OpenSSL's EVP) and frees the SSL object, ~14 KiB per
    // connection (detail/tls13_records.hpp, docs/tuning.md "TLS"). false: OpenSSL throughout.
    // TLS 1.2 connections always stay with OpenSSL. Read when a connection is accepted.
    bool own_records = true;
  };

  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;                      // 0: any free port, see port()
    std::vector<std::string> paths = {"/ws"};       // where WebSocket upgrades are accepted
                                                    // (none: an HTTP-only listener, e.g. an admin port)
    std::vector<std::string> envelope_paths{};      // of those, where clients get envelopes by default
                                                    // (a client chooses with ?envelope=1 or ?envelope=0)
    std::optional<Tls> tls{};                       // set for wss://
    std::size_t max_request_head_bytes = 8 * 1024;  // larger heads get 431
    // Request bodies (Content-Length only; Transfer-Encoding gets 411) up to this many bytes, for POST
    // routes (HttpRoute::methods); larger ones get 413. 0: no request may have a body (400), which is
    // what a public WebSocket port wants. The body must arrive within handshake_timeout too.
    std::size_t max_request_body_bytes = 0;
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(5);
    int backlog = 4096;
    std::chrono::milliseconds tick = std::chrono::milliseconds(250);  // granularity of every timer
    Session::Options session{};
    // What all clients' queues may hold together (docs/tuning.md, "Queue memory budget"): ring slots
    // and frame bytes, each shared frame once. Past it, the clients furthest behind are acted on by
    // their policy first. Process-wide accounting: with several servers the smallest budget applies.
    // 0: off (each client bounded by session.queue only).
    std::size_t queue_budget_bytes = default_queue_budget();
    std::vector<HttpRoute> http_routes{};                 // endpoints beside the WebSocket paths and GET /healthz
    bool topic_endpoints = true;                          // GET /topics/{t}/snapshot, /topics/{t}/history (JSON); the
                                                          // list of topics is an admin route: topic_list_route()
    std::chrono::seconds http_max_age{1};                 // Cache-Control max-age of those, for a CDN or proxy in front
    std::size_t max_http_requests_per_connection = 1000;  // keep-alive, then the connection closes
    std::size_t max_http_pipeline = 8;  // responses waiting to be written; more pipelined requests get 429
    Auth auth{};                        // tokens, access rules and the Origin allow-list (auth.hpp); none by default

    // ---- connection limits (docs/security.md, "Connection limits and proxies"). Past one, the
    // request gets 503 (429 for the handshake rate) with a jittered Retry-After and the connection
    // closes. handshake_timeout above is a deadline for the whole request head from accept, not for
    // the gap between bytes.
    std::size_t max_connections = 0;  // all connections, handshakes included; 0: RLIMIT_NOFILE less a tenth (>= 64)
    std::size_t max_connections_per_ip = 256;  // per client IP; 0: no limit
    double handshakes_per_second_per_ip = 20;  // new connections per client IP, token bucket; 0: no limit
    double handshake_burst_per_ip = 100;       // the bucket's size
    // Client IPs no per-IP limit applies to: these CIDRs, and loopback unless exempt_loopback is
    // off (local tools, benchmarks, and a proxy on the same host not yet listed in trusted_proxies
    // must not share one IP's budget).
    std::vector<std::string> limit_exempt{};
    bool exempt_loopback = true;
    // Peers (CIDRs) whose X-Forwarded-For, or PROXY header with proxy_protocol, names the client:
    // limits apply to that client and Session::remote() reports it. Nobody is trusted by default.
    std::vector<std::string> trusted_proxies{};
    bool proxy_protocol = false;  // trusted proxies send a PROXY v1/v2 header first (plain listeners only)

    // ---- reconnect advice (docs/protocol.md, "Reconnect advice"): a client turned away is told when
    // to come back, uniform in [x (1 - retry_jitter), x] so clients turned away together spread out.
    // x = retry_after for a connection limit (503 Retry-After, whole seconds rounded up) and for an
    // overload close (1013, e.g. the queue budget); x = drain_retry_after for a drain (1012). The
    // closes carry it as {"reason":"draining"|"overload","retry_after_ms":N}.
    std::chrono::milliseconds retry_after = std::chrono::seconds(10);
    double retry_jitter = 0.5;  // the random share of the advice, 0..1 (0: exactly x)
    std::chrono::milliseconds drain_retry_after = std::chrono::seconds(5);
  };

  // Every callback runs on the session's shard thread: quick, or hand the work to another thread
  // (a Processor, a pool) and answer through ConnectDecide / RpcReply / Gateway, which any thread may call.
  struct Callbacks {
    std::function<void(Session&)> on_open{};   // after the upgrade
    std::function<void(Session&)> on_close{};  // once, when the session ends
    /// Before the upgrade is answered: accept (with a user id, topics) or refuse (connect.hpp).
    /// Unset: every client that passed Options::auth is accepted.
    std::function<void(const ConnectRequest&, ConnectDecide)> on_connect{};
    /// A client message that is not a control op (docs/protocol.md), text or binary; `payload` is
    /// valid during the call only. Limited by Session::Options::messages_per_second. Unset: such a
    /// message is answered with error 4001 as before. docs/callbacks.md.
    std::function<void(Session&, std::string_view payload, Opcode op)> on_message{};
    /// {"op":"rpc","id":..,"data":..} (rpc.hpp). Unset: the client gets error 4501 "rpc not served".
    std::function<void(Session&, const RpcRequest&, RpcReply)> on_rpc{};
  };

  struct Stats {
    std::uint64_t sessions = 0;  // open now (WebSocket and pending handshakes)
    std::uint64_t accepted = 0;
    std::uint64_t upgraded = 0;
    std::uint64_t rejected = 0;       // handshakes answered with an HTTP error or timed out
    std::uint64_t accept_errors = 0;  // e.g. out of file descriptors (accepting pauses briefly)
    std::uint64_t subscriptions = 0;
    std::uint64_t deliveries = 0;  // frames queued to sessions
    std::uint64_t writes = 0;      // gather-writes that carried data
    std::uint64_t dropped_newest = 0;
    std::uint64_t dropped_oldest = 0;
    std::uint64_t conflated = 0;
    std::uint64_t disconnected_slow = 0;  // by the policy or by write_timeout
    std::uint64_t write_timeouts = 0;     // of those, by write_timeout
    std::uint64_t write_stalls = 0;       // writes that found the socket full and waited (ws and wss)
    std::uint64_t queued_bytes = 0;       // waiting in sessions' queues, sampled every tick
    std::uint64_t websockets = 0;         // of `sessions`, those past the upgrade, sampled every tick
    // The queue memory budget (Options::queue_budget_bytes), process-wide figures read at stats().
    std::uint64_t queue_budget_bytes = 0;   // the budget in force; 0: off
    std::uint64_t queue_memory_bytes = 0;   // what queues hold: queue_slot_bytes + frame_bytes
    std::uint64_t queue_slot_bytes = 0;     // ring storage of every session's queue
    std::uint64_t frame_bytes = 0;          // live frames, each once, beyond what history and latest values hold
    std::uint64_t budget_dropped = 0;       // frames dropped or conflated because of the budget
    std::uint64_t budget_disconnected = 0;  // clients closed (1013) because of the budget
    std::uint64_t budget_cap_frames = 0;    // lowest per-client frame cap the budget imposes now; 0: none
    // Connection limits and per-client bounds (docs/security.md).
    std::uint64_t max_connections = 0;     // the limit in force (Options::max_connections resolved)
    std::uint64_t refused_total = 0;       // 503: max_connections
    std::uint64_t refused_per_ip = 0;      // 503: max_connections_per_ip
    std::uint64_t refused_rate = 0;        // 429: handshakes_per_second_per_ip
    std::uint64_t head_timeouts = 0;       // request head incomplete at handshake_timeout (also in rejected)
    std::uint64_t subscribe_timeouts = 0;  // closed 1008: no subscription within subscribe_timeout
    std::uint64_t rate_limited = 0;        // closed 1008: control ops or pings past their rate
    std::uint64_t reply_overflows = 0;     // closed 1008: replies past the queue's control reserve
    std::uint64_t read_pauses = 0;         // times a session stopped reading for a client that did not
    // Throttled delivery ("interval_ms"; docs/protocol.md).
    std::uint64_t throttle_flushes = 0;    // lane ticks that carried frames: one per topic, shard and interval
    std::uint64_t throttle_conflated = 0;  // frames a newer one of the same key replaced in a lane's buffer
    std::uint64_t deltas_written = 0;      // "delta":"fossil" subscriptions: deltas written instead of full messages
    std::uint64_t drop_notices = 0;        // {"event":"dropped",..} notices sent ("drop_notices":true)
    // wss (docs/tuning.md, "TLS").
    std::uint64_t tls_own_records = 0;    // TLS 1.3 connections handed to fanout's record layer (Tls::own_records)
    std::uint64_t tls_record_errors = 0;  // of those, ended by a bad record (tag, size or type) with an alert
  };

  /// Binds and listens at once (so port() is known); accepts once the shards run.
  /// Throws std::system_error when it cannot listen, std::invalid_argument on bad options.
  Server(Runtime& runtime, Hub& hub, Options options);
  Server(Runtime& runtime, Hub& hub, Options options, Callbacks callbacks);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  /// The options in force (after the last reload()). Controlling thread.
  const Options& options() const noexcept;
  Stats stats() const;
  /// Seconds from Hub::publish to the gather-write that carried the frame (one sample per write).
  Histogram::Snapshot publish_to_write_latency() const;

  /// Loads Options::tls's certificate chain and key again (e.g. renewed in place) into a new TLS
  /// context: handshakes that start afterwards use it, connections already open keep theirs. Throws
  /// std::system_error (the files' problem) and keeps the context in use; std::logic_error without TLS.
  /// From the controlling thread (not concurrently with itself or the destructor).
  void reload_tls();

  /// Applies new settings without dropping a client (docs/embedding.md, "Reloading settings"): each
  /// shard switches to an immutable copy of them on its own thread, between loop turns.
  ///   - new connections: every setting below;
  ///   - open connections, at their next check: Session::Options (queue limits at the next frame
  ///     queued, max_message_bytes at the next message, max_subscriptions and the access rules at
  ///     the next subscribe, timers at the next tick, rates at the next op, the policy at the next
  ///     overflow unless Session::set_policy chose one); subscriptions already made stay;
  ///   - connection limits (max_connections, per-IP limits and rate, limit_exempt, exempt_loopback,
  ///     trusted_proxies, retry_after) at the next connection; open ones are never closed for them;
  ///   - handshake_timeout and the request limits for requests whose head is still arriving;
  ///   - auth (its rules, origins, anonymous access, timeouts; the verifier object) for new
  ///     connections, subscribes and HTTP pulls; queue_budget_bytes at the next tick.
  /// Kept as they are (a restart's): host, port, paths, tls (reload_tls() renews its files),
  /// backlog, tick, proxy_protocol, http_routes, topic_endpoints, http_max_age.
  /// Throws std::invalid_argument on bad options (null policy, a malformed network), changing
  /// nothing. From the controlling thread (not concurrently with itself, reload_tls or the destructor).
  void reload(Options options);

  void begin_drain() override;
  std::size_t open_connections() const override;
  void force_close() override;

  Hub& hub() noexcept { return hub_; }
  const Callbacks& callbacks() const noexcept { return callbacks_; }

 private:
  friend class Gateway;  // attach() sets its hooks on every shard's part

  Runtime& runtime_;
  Hub& hub_;
  std::shared_ptr<const detail::ServerSnapshot> snapshot_;  // the options in force; each shard holds it too
  std::size_t own_routes_from_ = 0;  // http_routes from here on are the server's own (topic routes)
  Callbacks callbacks_;
  std::uint16_t port_ = 0;
  std::unique_ptr<detail::Admission> admission_;     // connection limits, shared by the shards
  std::shared_ptr<asio::ssl::context> tls_context_;  // when options_.tls is set; its shards hold a pointer
  std::vector<std::unique_ptr<detail::ServerShard>> shards_;
};

}  // namespace fanout

// fanout/detail/server_shard.hpp — a Server's presence on one shard: its acceptor, its sessions and
// the timer that drives their deadlines.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "fanout/detail/connection_limits.hpp"
#include "fanout/detail/queue_budget.hpp"
#include "fanout/server.hpp"

namespace asio::ssl {
class context;
}

namespace fanout {
class Server;
class Session;
namespace detail {
class Shard;
struct Admission;
class GatewayHooks;

/// What Server::reload replaces, as one immutable whole: the options in force and what is derived
/// from them. Every shard holds it and swaps it on its own thread, so a session reads one version.
struct ServerSnapshot {
  Server::Options options;
  AdmissionNetworks networks;  // from trusted_proxies, limit_exempt, exempt_loopback
};

/// An accepted connection. Bound to the shard's io_context executor rather than the type-erased
/// any_io_executor: the socket and every pending wait on it are smaller (this is per idle connection).
using ShardSocket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;

class ServerShard {
 public:
  ServerShard(Server& server, Shard& shard, asio::ip::tcp::acceptor acceptor,
              std::shared_ptr<const ServerSnapshot> snapshot);
  ~ServerShard();

  /// The Server's options in force on this shard. Read on the shard thread and not kept past the
  /// call (a reload swaps them between loop turns); Server::options() is the controlling thread's.
  const Server::Options& options() const noexcept { return snapshot_->options; }
  const AdmissionNetworks& networks() const noexcept { return snapshot_->networks; }
  /// Server::reload's new snapshot, on the shard thread.
  void apply(std::shared_ptr<const ServerSnapshot> snapshot);

  void start();        // begins accepting and ticking, on the shard's loop (or before any runs it)
  void begin_drain();  // shard thread
  void force_close();  // shard thread

  void add(Session* s);
  void remove(Session* s) noexcept;

  Server& server;
  Shard& shard;
  // Session::Options in force, which every session holds a reference to: a reload assigns it (on
  // this thread), so open sessions see new limits at their next check.
  Session::Options session_options;
  const std::vector<std::string> paths;       // WebSocket paths: fixed for the server's life (a handshake holds a view)
  asio::ssl::context* tls_context = nullptr;  // the server's, when it serves wss://
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> upgraded{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::int64_t> subscriptions{0};
  std::atomic<std::uint64_t> queued_bytes{0};  // over this shard's sessions, sampled every tick
  std::atomic<std::uint64_t> websockets{0};    // sessions past the upgrade, sampled every tick
  // Connection limits and per-client bounds (docs/security.md); the shard thread writes them.
  Admission* admission = nullptr;                    // the server's, shared by its shards
  GatewayHooks* gateway = nullptr;                   // set by Gateway::attach; null: no gateway, no cost
  std::atomic<std::uint64_t> refused_total{0};       // 503: max_connections
  std::atomic<std::uint64_t> refused_per_ip{0};      // 503: max_connections_per_ip
  std::atomic<std::uint64_t> refused_rate{0};        // 429: handshakes_per_second_per_ip
  std::atomic<std::uint64_t> head_timeouts{0};       // request head not complete within handshake_timeout
  std::atomic<std::uint64_t> subscribe_timeouts{0};  // no subscription within subscribe_timeout: 1008
  std::atomic<std::uint64_t> rate_limited{0};        // control ops or pings past their rate: 1008
  std::atomic<std::uint64_t> reply_overflows{0};     // replies past the queue's control reserve: 1008
  std::atomic<std::uint64_t> read_pauses{0};         // sessions that stopped reading for a client that does not
  std::atomic<std::uint64_t> deltas_written{0};      // "delta":"fossil": deltas written instead of full messages
  std::atomic<std::uint64_t> drop_notices{0};        // {"event":"dropped",..} notices queued
  std::atomic<std::uint64_t> tls_own_records{0};    // TLS 1.3 sessions whose records fanout protects (Tls::own_records)
  std::atomic<std::uint64_t> tls_record_errors{0};  // of those, ended by a bad record (tag, size, type): alert sent
  QueueBudget budget;                               // this shard's part of Server::Options::queue_budget_bytes
  std::atomic<std::uint64_t> budget_cap{0};         // frames per client the budget allows now; 0: no pressure
  bool draining = false;

 private:
  void accept();
  void start_session(ShardSocket socket);
  void tick();
  void enforce_budget();  // every tick (queue_budget.cpp)

  static constexpr int k_accept_batch = 64;                      // connections taken per accept wakeup
  static constexpr std::uint64_t k_trim_after_bytes = 4 << 20;   // freed from queues before malloc_trim
  static constexpr std::chrono::seconds k_trim_interval{5};      // and at most this often
  static constexpr std::uint64_t k_trim_after_handshakes = 256;  // or after this many TLS connections accepted

  std::shared_ptr<const ServerSnapshot> snapshot_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer tick_timer_;
  asio::steady_timer accept_pause_;
  std::vector<Session*> sessions_;
  std::uint64_t queued_peak_ = 0;  // most queued bytes since the last trim: much freed since -> malloc_trim
  std::chrono::steady_clock::time_point last_trim_{};
  std::uint64_t handshakes_at_trim_ = 0;
};

std::shared_ptr<Session> make_plain_session(ServerShard& owner, ShardSocket socket);
std::shared_ptr<Session> make_tls_session(ServerShard& owner, ShardSocket socket);
/// Installs what TLS sessions need on the server's context (the key log for Tls::own_records).
void prepare_tls_context(asio::ssl::context& ctx);

}  // namespace detail
}  // namespace fanout

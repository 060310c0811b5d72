// [proxy]: the relay's connect, message, rpc and disconnect events forwarded to an HTTP backend, for
// applications whose logic stays in PHP, Node or Python (Centrifugo's connect/RPC proxy idea). The
// backend decides who connects (user id, first topics), answers rpcs and sees client messages; it
// pushes back through the server API. Wire format and error codes: docs/relay.md, "Backend proxy".
//
// Why in the relay and not in libfanout: an application that embeds the library has its logic in
// the same process and writes Server::Callbacks itself; the proxy is for those that run the relay
// as a product. So libcurl stays a dependency of the relay only, and optional there.
//
// Fan-out never waits on the backend: every request goes to BackendPool's workers; a full queue is
// answered at once (connect 503, rpc 4503, message error 4503).
//
// Thread safety: callbacks() before the servers start; the callbacks run on shard threads; answers
// come back on pool threads through ConnectDecide and RpcReply (both callable from any thread).
#pragma once

#include <fanout/library_metrics.hpp>
#include <fanout/metrics.hpp>
#include <fanout/server.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "backend_pool.hpp"
#include "config.hpp"

namespace relay {

class BackendProxy {
 public:
  using ClientIdOf = std::function<std::string(const fanout::Session&)>;
  using Log = std::function<void(const std::string&)>;

  struct Stats {
    BackendPool::Stats pool;
    std::uint64_t connects_accepted = 0, connects_refused = 0;  // as the backend decided
    std::uint64_t connects_failed = 0;                          // backend down, slow, busy or wrong: 5xx
    std::uint64_t rpcs_answered = 0, rpcs_failed = 0;           // failed: 4502/4503/4504
    std::uint64_t messages_failed = 0, disconnects_failed = 0;
  };

  BackendProxy(const ProxyConfig& config, Log log);

  /// Server callbacks for the events [proxy] events lists; `client_id` names a connection in the
  /// bodies (a ConnectRequest's own client_id, when set, wins at connect).
  fanout::Server::Callbacks callbacks(ClientIdOf client_id);

  /// Stops the workers: what is queued gets up to `grace` (disconnects at shutdown), then is dropped.
  void stop(std::chrono::milliseconds grace) { pool_.stop(grace); }

  Stats stats() const;
  /// fanout_relay_proxy_* on /metrics (docs/metrics.md); the proxy must outlive the registrations.
  fanout::MetricRegistrations add_metrics(fanout::MetricsRegistry& registry) const;
  /// For the periodic stats line.
  std::string stats_line() const;

 private:
  /// A failed request, logged at most once a second (with how many went unlogged).
  void failed(std::string_view event, const BackendPool::Result& r, std::string_view why = {});
  fanout::ConnectDecision decide(const BackendPool::Result& r);
  void answer_rpc(const BackendPool::Result& r, const fanout::RpcReply& reply);

  ProxyConfig config_;
  Log log_;
  std::string shown_url_;  // redacted, for the log
  BackendPool pool_;
  std::size_t client_limit_;  // the queue share of client-driven events (message, rpc, disconnect)

  std::atomic<std::uint64_t> connects_accepted_{0}, connects_refused_{0}, connects_failed_{0};
  std::atomic<std::uint64_t> rpcs_answered_{0}, rpcs_failed_{0}, messages_failed_{0}, disconnects_failed_{0};

  std::mutex log_mutex_;
  std::chrono::steady_clock::time_point last_log_{};
  std::uint64_t unlogged_ = 0;

  // Connections past the upgrade, by Session::id(), with the name the backend knows them by: their
  // disconnect is reported (refused ones never connected, so they never disconnect).
  std::mutex open_mutex_;
  std::unordered_map<std::uint64_t, std::string> open_;
};

}  // namespace relay

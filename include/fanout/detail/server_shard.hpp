// fanout/detail/server_shard.hpp — a Server's presence on one shard: its acceptor, its sessions and
// the timer that drives their deadlines.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

namespace asio::ssl {
class context;
}

namespace fanout {
class Server;
class Session;
namespace detail {
class Shard;

/// An accepted connection. Bound to the shard's io_context executor rather than the type-erased
/// any_io_executor: the socket and every pending wait on it are smaller (this is per idle connection).
using ShardSocket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;

class ServerShard {
 public:
  ServerShard(Server& server, Shard& shard, asio::ip::tcp::acceptor acceptor);
  ~ServerShard();

  void start();        // begins accepting and ticking, on the shard's loop (or before any runs it)
  void begin_drain();  // shard thread
  void force_close();  // shard thread

  void add(Session* s);
  void remove(Session* s) noexcept;

  Server& server;
  Shard& shard;
  asio::ssl::context* tls_context = nullptr;  // the server's, when it serves wss://
  std::atomic<std::uint64_t> open{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> upgraded{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::int64_t> subscriptions{0};
  std::atomic<std::uint64_t> queued_bytes{0};  // over this shard's sessions, sampled every tick
  std::atomic<std::uint64_t> websockets{0};    // sessions past the upgrade, sampled every tick
  bool draining = false;

 private:
  void accept();
  void start_session(ShardSocket socket);
  void tick();

  static constexpr int k_accept_batch = 64;  // connections taken per accept wakeup

  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer tick_timer_;
  asio::steady_timer accept_pause_;
  std::vector<Session*> sessions_;
};

std::shared_ptr<Session> make_plain_session(ServerShard& owner, ShardSocket socket);
std::shared_ptr<Session> make_tls_session(ServerShard& owner, ShardSocket socket);

}  // namespace detail
}  // namespace fanout

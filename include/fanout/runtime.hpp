// fanout/runtime.hpp — the shards: one asio::io_context per core, each driven by one thread.
//
// A session lives on one shard for its whole life, so its state needs no locks. Either the Runtime
// starts and owns one thread per shard, or the application hands in io_contexts it already runs
// (then fanout starts no thread at all).
//
//   fanout::Runtime rt({.shards = 2});
//   fanout::Hub hub(rt);
//   fanout::Server server(rt, hub, {.port = 8080});
//   rt.start();
//   ...
//   rt.stop();   // drains: clients get 1001, queued data is flushed, bounded by the drain time
//
// Thread safety: start() and stop() from one controlling thread (not a shard thread).
// shard_count() and context() from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>

namespace fanout {

namespace detail {
class Shard;
}

/// Something that holds connections and must let them go before the shards stop (a Server).
class Drainable {
 public:
  virtual ~Drainable() = default;
  /// Stop accepting, ask every connection to close (1001) after flushing. Any thread; returns at once.
  virtual void begin_drain() = 0;
  /// Connections still open. Any thread.
  virtual std::size_t open_connections() const = 0;
  /// Close whatever is left now. Any thread; returns when done or the shards are gone.
  virtual void force_close() = 0;
};

class Runtime {
 public:
  struct Options {
    unsigned shards = 1;  // one thread and one io_context each; 0 means std::thread::hardware_concurrency()
  };

  Runtime();
  explicit Runtime(Options options);
  /// Uses io_contexts the application owns and runs; start() then starts no threads.
  explicit Runtime(std::span<asio::io_context* const> contexts);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  /// Calls stop().
  ~Runtime();

  /// Starts one thread per owned shard. Idempotent.
  void start();
  /// Graceful stop: every registered Drainable drains (clients get close 1001 once their queue is
  /// flushed) for at most `drain`, then the rest is closed and the shard threads are joined.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(2));
  bool running() const noexcept { return running_; }

  std::size_t shard_count() const noexcept { return shards_.size(); }
  asio::io_context& context(std::size_t shard) noexcept;
  detail::Shard& shard(std::size_t i) noexcept { return *shards_[i]; }

  /// Servers register themselves so stop() can drain them.
  void add_drainable(Drainable* d);
  void remove_drainable(Drainable* d);

 private:
  std::vector<std::unique_ptr<asio::io_context>> owned_;
  std::vector<std::unique_ptr<detail::Shard>> shards_;
  std::vector<std::thread> threads_;
  std::vector<Drainable*> drainables_;
  std::mutex mutex_;
  bool running_ = false;
  bool stopped_ = false;
};

}  // namespace fanout

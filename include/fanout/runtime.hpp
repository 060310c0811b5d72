// fanout/runtime.hpp — the shards: one asio::io_context per core, each driven by one thread.
//
// A session lives on one shard for its whole life, so its state needs no locks. Either the Runtime
// starts and owns one thread per shard, or the application hands in io_contexts it already runs
// (then fanout starts no thread at all, and start() is not needed).
//
//   fanout::Runtime rt({.shards = 2});
//   fanout::Hub hub(rt);
//   fanout::Server server(rt, hub, {.port = 8080});
//   rt.start();
//   ...
//   rt.stop();   // drains: clients get 1001, queued data is flushed, bounded by the drain time
//
// Embedded in a service that runs its own loop (examples/embed):
//
//   asio::io_context io(1);
//   fanout::Runtime rt(io);              // or fanout::Runtime rt({&io1, &io2}) for several
//   fanout::Hub hub(rt);
//   fanout::Server server(rt, hub, {.port = 8080});
//   io.run();                            // the service's own loop; fanout's work runs in it
//
// The one-thread rule: each io_context handed in must be run by exactly one thread at a time (its
// sessions take no locks). With that, shutting down cannot hang, whichever way it happens: stop()
// (and the destructors of Server and Runtime) may be called from the loop's own thread (e.g. a
// signal handler: the drain then runs the loop's handlers while it waits), from another thread
// while the loop runs, or after the loop stopped or before it ever ran (then the work is done
// inline, since no thread touches the shards).
//
// Thread safety: start() and stop() from one controlling thread at a time, which may be a loop's
// own thread. shard_count(), context() and running() from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>

#include "fanout/export.hpp"

namespace fanout {

namespace detail {
struct RuntimeAccess;
class Shard;
class Loop;
}  // namespace detail

/// Something that holds connections and must let them go before the shards stop (a Server).
class FANOUT_API Drainable {
 public:
  virtual ~Drainable() = default;
  /// Stop accepting, ask every connection to close (1001) after flushing. Any thread; returns at once.
  virtual void begin_drain() = 0;
  /// Connections still open. Any thread.
  virtual std::size_t open_connections() const = 0;
  /// Close whatever is left now. Any thread; returns when done or the shards are gone.
  virtual void force_close() = 0;
};

class FANOUT_API Runtime {
 public:
  struct Options {
    unsigned shards = 1;  // one thread and one io_context each; 0: one per hardware thread (at most 64)
  };

  Runtime();
  explicit Runtime(Options options);
  /// Uses io_contexts the application owns and runs (one thread each); fanout starts no thread.
  /// Between 1 and 64 contexts.
  explicit Runtime(asio::io_context& context);
  Runtime(std::initializer_list<asio::io_context*> contexts);
  explicit Runtime(std::span<asio::io_context* const> contexts);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  /// Calls stop(). Must not run on one of the Runtime's own shard threads (it could not join
  /// them): that aborts with a message saying so.
  ~Runtime();

  /// Starts one thread per owned shard; nothing to do with handed-in io_contexts. Idempotent.
  void start();
  /// Graceful stop: every registered Drainable drains (clients get close 1001 once their queue is
  /// flushed) for at most `drain`, then the rest is closed. The Runtime's own threads are joined
  /// (when called on one of them, they are stopped and the destructor joins them); handed-in
  /// io_contexts keep running, with no fanout connection left on them. Safe to call again.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(2));
  /// Some thread runs a shard's loop now.
  bool running() const noexcept;

  std::size_t shard_count() const noexcept { return loops_.size(); }
  asio::io_context& context(std::size_t shard) noexcept;

  /// Servers register themselves so stop() can drain them.
  void add_drainable(Drainable* d);
  void remove_drainable(Drainable* d);

 private:
  friend struct detail::RuntimeAccess;
  void adopt(std::span<asio::io_context* const> contexts);
  /// The loop whose thread is calling, if any.
  detail::Loop* current_loop() noexcept;

  std::vector<std::unique_ptr<asio::io_context>> owned_;
  std::vector<std::unique_ptr<detail::Loop>> loops_;
  std::vector<std::unique_ptr<detail::Shard>> shards_;
  std::vector<std::thread> threads_;
  std::vector<Drainable*> drainables_;
  std::mutex mutex_;
};

}  // namespace fanout

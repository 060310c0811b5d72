// fanout/processor.hpp — an optional user stage between the router and Hub::publish, off the I/O threads.
//
// Each routed message goes to a pool of worker threads; the user's handler turns it into zero or
// more (topic, payload) outputs, which are published. A topic always goes to the same worker (hash
// of the topic), so messages of one topic are handled, and their outputs published, in arrival
// order; different topics run in parallel. Each worker gets its own handler object (from the
// factory), so per-topic state needs no locks.
//
// Every worker has a bounded queue. When it is full, Overflow::drop_oldest discards the oldest
// queued message (counted), and Overflow::block makes submit() wait for room: called on the thread
// that reads the upstream socket, that thread stops reading, the kernel's receive buffer fills and
// TCP flow control pushes back on the upstream instead of memory growing here.
//
// An exception thrown by the handler (or by the publish function) is caught, counted in
// Stats::errors and reported (rate-limited); the worker carries on with the next message. Outputs
// the handler emitted before throwing are published.
//
//   fanout::Processor processor(
//       {.workers = 2},
//       [](std::size_t /*worker*/) {
//         return [bars = BarBuilder{}](const fanout::Processor::Message& m, fanout::Processor::Output& out) mutable {
//           out.forward(m);                                   // the raw message, unchanged
//           if (auto bar = bars.add(m)) out.emit("bars:" + bar->inst, bar->json());
//         };
//       },
//       [&](const fanout::Processor::Output::Item& o) { hub.publish(o.topic, o.payload, o.op); });
//   processor.start();
//   processor.submit({.topic = r.topic, .payload = std::string(msg)});   // from the ingest thread
//
// Thread safety: submit() from any one thread at a time per topic (order is the order of submit
// calls); stats() from any thread; start() and stop() from one controlling thread. The handler
// and the publish function run on worker threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fanout/export.hpp"
#include "fanout/frame.hpp"

namespace fanout {

namespace detail {
class ErrorReporter;
}

class FANOUT_API Processor {
 public:
  /// A routed upstream message.
  struct Message {
    std::string topic;
    std::string payload;
    std::optional<std::string> key{};
    std::optional<std::uint64_t> seq{};
    Opcode op = Opcode::text;
    std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  };

  /// Where a handler puts its results. Items are published in the order they were emitted, right
  /// after the handler returns; when it throws, what it emitted before the throw is still published
  /// (so "forward the raw message, then derive" keeps the raw stream whole when deriving fails).
  class Output {
   public:
    struct Item {
      std::string topic;
      std::string payload;
      Opcode op = Opcode::text;
      std::optional<std::uint64_t> seq{};
      std::optional<std::string> key{};  // snapshots and conflation keep the newest message per key
    };
    void emit(std::string topic, std::string payload, Opcode op = Opcode::text, std::optional<std::uint64_t> seq = {},
              std::optional<std::string> key = {}) {
      items_.push_back({std::move(topic), std::move(payload), op, seq, std::move(key)});
    }
    /// The message itself, unchanged (topic, payload, opcode, seq, key).
    void forward(const Message& m) { items_.push_back({m.topic, m.payload, m.op, m.seq, m.key}); }
    std::size_t worker() const noexcept { return worker_; }

   private:
    friend class Processor;
    std::vector<Item> items_;
    std::size_t worker_ = 0;
  };

  using Handler = std::function<void(const Message&, Output&)>;
  /// Makes the handler of worker `index` (0..workers-1); called once per worker, in start().
  using HandlerFactory = std::function<Handler(std::size_t index)>;
  /// Publishes one output (e.g. Hub::publish plus SinkSet::offer). Called on worker threads.
  using Publish = std::function<void(const Output::Item&)>;

  enum class Overflow {
    drop_oldest,  // a full queue discards its oldest message for the new one (counted in dropped)
    block,        // submit() waits for room: backpressure onto the caller (the upstream read)
  };

  struct Options {
    std::size_t workers = 2;
    std::size_t max_queued = 10'000;           // messages per worker queue
    std::size_t max_queued_bytes = 64u << 20;  // payload bytes per worker queue
    Overflow overflow = Overflow::drop_oldest;
    /// Error lines (rate-limited). Empty: printed to stderr. Called on worker threads.
    std::function<void(std::string_view)> on_error{};
  };

  struct Stats {
    std::size_t queued = 0;                     // messages waiting, all workers
    std::size_t queued_bytes = 0;               // their payload bytes
    std::uint64_t submitted = 0;                // messages given to submit()
    std::uint64_t processed = 0;                // handler calls that returned normally
    std::uint64_t emitted = 0;                  // outputs published
    std::uint64_t dropped = 0;                  // messages discarded by drop_oldest, or submitted after stop
    std::uint64_t errors = 0;                   // handler or publish calls that threw
    std::uint64_t blocked = 0;                  // submit() calls that had to wait for room (Overflow::block)
    std::chrono::microseconds blocked_time{0};  // total time submit() waited
    std::chrono::milliseconds lag{0};           // age of the oldest queued message, over all workers
  };

  /// Throws std::invalid_argument for zero workers or limits, or missing functions.
  Processor(Options options, HandlerFactory factory, Publish publish);
  /// The same handler (copied) for every worker: for handlers without per-topic state.
  Processor(Options options, Handler handler, Publish publish);
  ~Processor();  // stop()
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  /// Makes the handlers and starts the workers. Once.
  void start();
  /// Processes what is queued, then joins the workers; a submit() blocked for room returns false.
  /// Idempotent.
  void stop();

  /// Queues `m` on its topic's worker. Returns false when it was not queued (after stop(), or a
  /// message too large for a queue); with drop_oldest it always queues, possibly dropping an older one.
  bool submit(Message m);

  /// The worker a topic goes to.
  std::size_t worker_of(std::string_view topic) const noexcept;

  Stats stats() const;
  const Options& options() const noexcept { return options_; }

 private:
  struct Worker;
  void run(Worker& w);

  Options options_;
  HandlerFactory factory_;
  Publish publish_;
  std::unique_ptr<detail::ErrorReporter> reporter_;
  std::vector<std::unique_ptr<Worker>> workers_;
  bool started_ = false;
};

}  // namespace fanout

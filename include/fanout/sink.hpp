// fanout/sink.hpp — asynchronous consumers of the published stream (databases, journals).
//
// A Sink owns a bounded queue and one writer thread. offer() never blocks and never throws: when
// the queue is full the record is dropped and counted, so a slow or failing database can never
// delay fan-out. The writer thread takes what is queued in batches and hands each batch to a
// SinkWriter (the part that talks to the database); a transient error is retried with capped,
// jittered exponential backoff while new records queue up (or drop) behind it.
//
//   fanout::SinkSet sinks;
//   sinks.add(std::make_unique<fanout::JournalWriter>(fanout::JournalWriter::Options{.path = "out.jsonl"}),
//             {.name = "journal", .topics = {"trades:*"}});
//   sinks.start();
//   hub.publish(topic, payload);
//   sinks.offer(topic, payload, seq);   // right where the message is published
//   sinks.stop();                       // writes what is queued, bounded by Options::stop_timeout
//
// Writing another sink: implement SinkWriter (docs/sinks.md).
//
// Thread safety: offer() and stats() from any thread, concurrently. start() and stop() from one
// controlling thread. SinkWriter's functions run on the sink's thread, except interrupt().
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
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fanout/export.hpp"

namespace fanout {

namespace detail {
class ErrorReporter;
}

/// One published message as sinks receive it. Shared (read-only) by every sink that takes it.
struct FANOUT_API SinkRecord {
  std::string topic;
  std::string payload;
  std::optional<std::uint64_t> seq;            // the upstream's sequence number, when known
  std::chrono::system_clock::time_point time;  // when it was offered, i.e. published
};
using SinkRecordRef = std::shared_ptr<const SinkRecord>;

/// What a SinkWriter says about one batch.
struct FANOUT_API WriteResult {
  enum class Kind {
    ok,     // every record written (except `rejected` ones)
    retry,  // nothing written, try the same batch again later (connection lost, lock timeout, disk full)
    fail,   // nothing written, and retrying will not help (bad data, missing permissions): the batch is lost
  };
  Kind kind = Kind::ok;
  std::string error{};       // what went wrong, for the log
  std::size_t rejected = 0;  // with ok: records deliberately skipped (e.g. not storable), counted as failed

  static WriteResult ok(std::size_t rejected = 0) { return {Kind::ok, {}, rejected}; }
  static WriteResult retry(std::string error) { return {Kind::retry, std::move(error), 0}; }
  static WriteResult fail(std::string error) { return {Kind::fail, std::move(error), 0}; }
};

/// The part of a sink that stores records. Implement write(); the Sink does queueing, batching,
/// retries and counting. An exception from write() counts as WriteResult::fail.
class FANOUT_API SinkWriter {
 public:
  virtual ~SinkWriter() = default;
  /// Stores the batch, in order, all or nothing (so a retry cannot duplicate). Sink thread only.
  virtual WriteResult write(std::span<const SinkRecordRef> batch) = 0;
  /// From the thread calling Sink::stop(), when the stop timeout has passed while write() still
  /// runs: make write() return soon (e.g. cancel the query). Must be thread-safe against write().
  virtual void interrupt() noexcept {}
  /// Once, on the sink's thread, after the last write (flush and close files, connections).
  virtual void close() noexcept {}
};

class FANOUT_API Sink {
 public:
  enum class Overflow {
    drop_newest,  // a full queue refuses new records: what is queued is written, the rest is lost (or spilled)
    drop_oldest,  // a full queue discards its oldest record for the new one (or spills it)
  };

  struct Options {
    std::string name = "sink";
    /// Topics this sink takes: exact names, or prefixes ending in '*' ("trades:*"). Empty: all.
    std::vector<std::string> topics{};
    std::size_t max_queued = 100'000;          // records waiting for the writer
    std::size_t max_queued_bytes = 64u << 20;  // their topic and payload bytes
    Overflow overflow = Overflow::drop_newest;
    std::size_t max_batch = 1000;                  // records per write()
    std::size_t max_batch_bytes = 4u << 20;        // bytes per write() (a single larger record goes alone)
    std::chrono::milliseconds retry_initial{100};  // backoff after the first transient error
    std::chrono::milliseconds retry_max{10'000};   // cap of the doubling backoff (full jitter below it)
    std::size_t max_attempts = 0;                  // per batch; 0: retry until it works or the sink stops
    std::chrono::milliseconds stop_timeout{5000};  // stop(): time left to write what is queued
    /// Error lines (rate-limited). Empty: printed to stderr. Called on the sink's thread.
    std::function<void(std::string_view)> on_error{};
    /// Fed only by other sinks' overflow (spill_to), never by SinkSet::offer directly.
    bool spill_only = false;
  };

  struct Stats {
    std::size_t queued = 0;                           // records waiting now
    std::size_t queued_bytes = 0;                     // their bytes
    std::uint64_t offered = 0;                        // records this sink was offered (after the topic filter)
    std::uint64_t written = 0;                        // records the writer stored
    std::uint64_t dropped = 0;                        // records lost to a full queue
    std::uint64_t spilled = 0;                        // records a full queue handed to the spill sink
    std::uint64_t failed = 0;                         // records lost to a failed write, rejected, or left at stop
    std::uint64_t errors = 0;                         // write() calls that did not succeed
    std::uint64_t retries = 0;                        // write() calls repeated after a transient error
    std::uint64_t batches = 0;                        // successful write() calls
    std::chrono::milliseconds lag{0};                 // age of the oldest queued record (0 when the queue is empty)
    std::chrono::microseconds last_write_latency{0};  // publish-to-stored of the last batch's first record
  };

  /// Throws std::invalid_argument for a null writer or zero limits.
  Sink(std::unique_ptr<SinkWriter> writer, Options options);
  ~Sink();  // stop()
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  /// Starts the writer thread. Once.
  void start();
  /// Lets the writer write what is queued for up to stop_timeout, then discards the rest (counted
  /// as failed), interrupts a write that still runs and joins the thread. Idempotent.
  void stop();

  /// Records this sink's full queue would drop go to `other` instead (e.g. a journal on local disk
  /// behind a remote database): counted here as spilled, there as offered; dropped only when `other`
  /// refuses them too. Before start(); `other` must not spill itself, and must outlive this sink's use.
  void spill_to(Sink& other);

  /// True when `topic` passes the topic filter.
  bool wants(std::string_view topic) const noexcept;
  /// Queues the record (the filter is not applied here). Returns false when it was dropped
  /// (queue full or sink stopped). Never blocks on the writer, never throws.
  bool offer(const SinkRecordRef& record) noexcept;

  Stats stats() const;
  const Options& options() const noexcept { return options_; }

 private:
  friend class SinkSet;
  void request_stop();  // stop() in two halves, so a SinkSet drains its sinks in parallel
  void finish_stop(std::chrono::steady_clock::time_point deadline);
  void run();
  std::size_t bytes_of(const SinkRecord& r) const noexcept { return r.topic.size() + r.payload.size(); }
  std::chrono::milliseconds backoff(unsigned attempt);

  std::unique_ptr<SinkWriter> writer_;
  Options options_;
  Sink* spill_ = nullptr;
  std::unique_ptr<detail::ErrorReporter> reporter_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // records queued, or stopping
  std::condition_variable stopped_;  // the thread is done
  std::deque<SinkRecordRef> queue_;
  std::size_t queued_bytes_ = 0;
  bool started_ = false, stopping_ = false, abandon_ = false, done_ = false;
  Stats stats_{};
  std::thread thread_;
};

/// Several sinks fed by one call. Build it (add) before start(); then offer() from any thread.
class FANOUT_API SinkSet {
 public:
  SinkSet() = default;
  ~SinkSet();  // stop()
  SinkSet(const SinkSet&) = delete;
  SinkSet& operator=(const SinkSet&) = delete;

  Sink& add(std::unique_ptr<SinkWriter> writer, Sink::Options options);
  void start();
  void stop();  // every sink, each bounded by its stop_timeout (they drain in parallel)

  /// Offers a published message to every sink whose filter takes the topic (spill_only sinks
  /// excepted): one shared record, at most one allocation per call whatever the number of sinks.
  /// Non-blocking, never throws.
  void offer(std::string_view topic, std::string_view payload, std::optional<std::uint64_t> seq = {}) noexcept;

  bool empty() const noexcept { return sinks_.empty(); }
  std::size_t size() const noexcept { return sinks_.size(); }
  Sink& operator[](std::size_t i) { return *sinks_[i]; }
  const std::vector<std::unique_ptr<Sink>>& sinks() const noexcept { return sinks_; }

 private:
  std::vector<std::unique_ptr<Sink>> sinks_;
};

}  // namespace fanout

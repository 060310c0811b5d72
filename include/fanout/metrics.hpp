// fanout/metrics.hpp — counters, gauges and histograms, rendered in the Prometheus text format.
//
// Values are written where they happen, cheaply: a ShardedCounter or ShardedHistogram has one cell
// per shard, written only by that shard's thread with relaxed atomics (a plain load and store, no
// lock, no allocation), and summed when someone scrapes. A MetricsRegistry does not own values: a
// component registers a callback that reads what it owns, so the registry knows nothing of sinks,
// processors or upstreams, and a component that goes away takes its series with it (Registration).
//
//   fanout::MetricsRegistry registry;
//   auto r = registry.add_gauge("fanout_sink_queue_depth", "Messages waiting in the sink's queue",
//                               {{"sink", "journal"}}, [&] { return double(sink.queue_depth()); });
//   options.http_routes.push_back(fanout::metrics_route(registry));   // GET /metrics
//
// Thread safety: every MetricsRegistry function from any thread. Callbacks run on the scraping
// thread, under the registry's lock: they must be thread-safe, quick, and must not call the registry.
// When a Registration is destroyed its callback has returned and is never called again.
// ShardedCounter::add / ShardedHistogram::observe: one writer thread per shard index; reads any thread.
// Histogram::observe: one writer thread at a time; snapshot() any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fanout/export.hpp"
#include "fanout/http.hpp"

namespace fanout {

/// Label name/value pairs of one series, e.g. {{"policy", "drop_oldest"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

/// A count split into per-shard cells (one cache line each) so shards never share a written line.
class FANOUT_API ShardedCounter {
 public:
  explicit ShardedCounter(std::size_t shards);
  /// Shard `shard`'s thread only.
  void add(std::size_t shard, std::uint64_t n = 1) noexcept {
    auto& v = cells_[shard].value;
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// Sum over the shards. Any thread.
  std::uint64_t value() const noexcept;
  std::size_t shards() const noexcept { return shards_; }

 private:
  struct alignas(64) Cell {
    std::atomic<std::uint64_t> value{0};
  };
  std::unique_ptr<Cell[]> cells_;
  std::size_t shards_;
};

/// A distribution over fixed buckets (upper bounds, ascending; +Inf is implicit). One writer.
class FANOUT_API Histogram {
 public:
  /// What a scrape sees. `counts[i]` is the number of observations in bucket i (not cumulative):
  /// <= bounds[i], and the last one (counts.size() == bounds.size() + 1) above every bound.
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> counts;
    double sum = 0;
    std::uint64_t count() const noexcept;
    /// Adds `other` (same bounds) into this one. Throws std::invalid_argument on different bounds.
    void merge(const Snapshot& other);
  };

  /// Throws std::invalid_argument unless `upper_bounds` is non-empty, finite and strictly ascending.
  explicit Histogram(std::vector<double> upper_bounds);

  /// The writer thread only. No allocation, no lock.
  void observe(double value) noexcept;
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const noexcept { return bounds_; }

  /// 50 µs .. 10 s, roughly x2 apart: for publish-to-write and queue lags, in seconds.
  static std::vector<double> latency_bounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

/// One Histogram per shard, each written by its shard's thread; snapshot() sums them.
class FANOUT_API ShardedHistogram {
 public:
  ShardedHistogram(std::size_t shards, std::vector<double> upper_bounds);
  void observe(std::size_t shard, double value) noexcept { cells_[shard]->observe(value); }
  Histogram::Snapshot snapshot() const;

 private:
  std::vector<std::unique_ptr<Histogram>> cells_;  // separate allocations: no shared cache lines
};

class FANOUT_API MetricsRegistry {
 public:
  enum class Type { counter, gauge, histogram };

  /// Keeps a registered series alive; destroying it (or reset()) removes the series. Move-only.
  /// Safe to destroy after the registry is gone.
  class [[nodiscard]] Registration {
   public:
    Registration() = default;
    Registration(Registration&& o) noexcept;
    Registration& operator=(Registration&& o) noexcept;
    ~Registration() { reset(); }
    void reset() noexcept;
    explicit operator bool() const noexcept { return id_ != 0; }

   private:
    friend class MetricsRegistry;
    Registration(std::weak_ptr<void> state, std::uint64_t id) : state_(std::move(state)), id_(id) {}
    std::weak_ptr<void> state_;
    std::uint64_t id_ = 0;
  };

  /// One series of a family whose label sets are only known at scrape time (e.g. per topic).
  struct Sample {
    MetricLabels labels;
    double value;
  };

  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Names follow Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total by convention),
  // label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" ("le" is reserved for histograms).
  // Every add_* throws std::invalid_argument on a bad name, a name already registered with another
  // type, or a label set already registered under the name.

  /// A value that only grows (reset only by a restart).
  Registration add_counter(std::string name, std::string help, MetricLabels labels, std::function<double()> read);
  Registration add_counter(std::string name, std::string help, MetricLabels labels, const ShardedCounter& counter);
  /// A value that goes up and down.
  Registration add_gauge(std::string name, std::string help, MetricLabels labels, std::function<double()> read);
  Registration add_histogram(std::string name, std::string help, MetricLabels labels,
                             std::function<Histogram::Snapshot()> read);
  Registration add_histogram(std::string name, std::string help, MetricLabels labels,
                             const ShardedHistogram& histogram);
  /// A counter or gauge family whose series come from the callback at each scrape (bounded by its
  /// owner: e.g. the relay's per-topic counts stop adding topics past a limit). Label sets the
  /// callback repeats, or that clash with a fixed series, are rendered once (the first wins).
  Registration add_family(std::string name, std::string help, Type type, std::function<std::vector<Sample>()> read);

  /// Every registered family in Prometheus text exposition format 0.0.4, sorted by name.
  std::string render() const;
  /// Series currently registered (fixed ones; families count once).
  std::size_t size() const;

  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct State;
  Registration add(std::string name, std::string help, Type type, MetricLabels labels, std::function<double()> scalar,
                   std::function<Histogram::Snapshot()> histogram, std::function<std::vector<Sample>()> family);
  std::shared_ptr<State> state_;
};

/// GET `path` answering registry.render(). The registry must outlive the server that serves it.
FANOUT_API HttpRoute metrics_route(const MetricsRegistry& registry, std::string path = "/metrics");

}  // namespace fanout

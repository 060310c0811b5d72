// The relay's live status: message counts per topic, a once-a-second history of the totals, and the
// JSON the status page (GET /, status_page.html) polls at GET /status.json.
//
// Thread safety: count() on the ingest thread (every routed message: one uncontended lock and a hash
// lookup, off the I/O shards), sample() once a second from one thread, json() and topic_samples()
// from any thread (HTTP handlers run on shard threads).
#pragma once

#include <fanout/metrics.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace relay {

/// What the relay reads from its server(s), hub and upstreams at one moment.
struct LiveTotals {
  struct Upstream {
    std::string name;
    std::string state;
    std::string url;
    std::uint64_t connects = 0;
    std::uint64_t failures = 0;
    std::uint64_t messages = 0;
  };
  std::uint64_t connections = 0;
  std::uint64_t subscriptions = 0;
  std::uint64_t topics = 0;  // with subscribers
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;  // every policy action and slow disconnect
  std::uint64_t queued_bytes = 0;
  std::vector<Upstream> upstreams;
};

class StatusBoard {
 public:
  struct Options {
    std::size_t max_topics = 1000;  // topics tracked by name; the rest are summed under "(other)"
    std::size_t history = 300;      // points kept for the chart, one per sample()
  };
  static constexpr std::string_view k_other_topic = "(other)";
  static constexpr std::size_t k_json_topics = 500;  // topics listed in json(), the busiest

  explicit StatusBoard(Options options);

  /// A message routed to `topic` (whether or not anyone is subscribed).
  void count(std::string_view topic, std::size_t bytes);
  /// Takes a history point: rates since the previous sample, per topic and in total.
  void sample(const LiveTotals& totals);
  /// The status document: `live` (read now) plus per-topic rates and the history.
  std::string json(const LiveTotals& live) const;
  /// fanout_relay_topic_messages_total{topic=...} for the registry.
  std::vector<fanout::MetricsRegistry::Sample> topic_samples() const;

 private:
  struct TopicCount {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t messages_at_sample = 0;
    double rate = 0;  // messages per second over the last sample interval
  };
  struct Point {
    std::int64_t t_ms;  // wall clock, for the chart's time axis
    double routed_per_s, published_per_s, delivered_per_s, dropped_per_s;
    std::uint64_t connections;
  };

  Options options_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  mutable std::mutex mutex_;
  std::unordered_map<std::string, TopicCount> topics_;
  TopicCount other_;
  std::uint64_t routed_ = 0;  // every message count() saw
  std::uint64_t routed_at_sample_ = 0;
  std::deque<Point> history_;
  LiveTotals last_{};
  std::chrono::steady_clock::time_point last_at_{};
  bool sampled_ = false;
};

}  // namespace relay

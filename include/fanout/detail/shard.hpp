// fanout/detail/shard.hpp — per-shard state shared by every server and the hub on that shard.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <asio/io_context.hpp>

#include "fanout/detail/poller.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/metrics.hpp"
#include "fanout/outbound_queue.hpp"

namespace fanout {
namespace detail {

/// Counters written by the shard's thread only and read by anyone (stats scrapes).
struct ShardCounters {
  std::atomic<std::uint64_t> deliveries{0};
  std::atomic<std::uint64_t> dropped_newest{0};
  std::atomic<std::uint64_t> dropped_oldest{0};
  std::atomic<std::uint64_t> conflated{0};
  std::atomic<std::uint64_t> disconnected_slow{0};    // by the policy (queue full)
  std::atomic<std::uint64_t> budget_dropped{0};       // of the drops above, by the server-wide queue budget
  std::atomic<std::uint64_t> budget_disconnected{0};  // of disconnected_slow, by the budget
  std::atomic<std::uint64_t> write_timeouts{0};       // a write blocked longer than write_timeout
  std::atomic<std::uint64_t> writes{0};               // gather-writes (syscalls) that carried data
  std::atomic<std::uint64_t> write_stalls{0};         // the socket was full: waited for writability
  std::atomic<std::uint64_t> throttle_flushes{0};     // ticks of throttled lanes that carried frames (lane.hpp)
  std::atomic<std::uint64_t> throttle_conflated{0};   // frames a lane's newer frame of the same key replaced
  /// Seconds from Hub::publish to the gather-write carrying the frame, one sample per write (its
  /// first frame, the oldest), not per delivery.
  Histogram publish_to_write{Histogram::latency_bounds()};

  // Single writer: a plain load and store, no locked instruction on the hot path.
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

/// Steady-clock time in nanoseconds: the unit of Frame::published_ns.
inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// When the first frame of a write was published (0: a control frame, or none): see sample_write.
inline std::int64_t published_ns_of(const Frame* first) noexcept { return first ? first->published_ns() : 0; }

/// Records a publish-to-write sample for a write whose first frame was published at `published_ns`.
/// Shard thread only; one clock read per write.
inline void sample_write(ShardCounters& counters, std::int64_t published_ns) noexcept {
  if (published_ns == 0) return;
  counters.publish_to_write.observe(static_cast<double>(steady_now_ns() - published_ns) * 1e-9);
}

class Throttle;

class Shard {
 public:
  Shard(asio::io_context& ioc, std::size_t index);
  ~Shard();

  asio::io_context& context() noexcept { return ioc_; }
  std::size_t index() const noexcept { return index_; }

  /// Moves the frames waiting in the topic's Group::pending into its log on this shard and flags
  /// the members that will pull them (group.hpp). Shard thread only.
  void deliver_pending(Topic& topic);
  /// After frames were appended to `group`'s log (a publish, or a throttled lane's tick): flags the
  /// members that will pull them, hands them now to those that cannot wait, bounds the log.
  void walk(Topic& topic, Group& group);
  /// Throttled delivery on this shard (throttle.hpp), made at the first throttled subscription.
  Throttle& throttle();
  /// Adds what policies did outside deliver() (replays at subscribe). Shard thread only.
  void add_counters(const BackpressureCounters& c) noexcept;
  /// Schedules `s` for a gather-write at the end of this loop turn. Shard thread only.
  void mark_dirty(Member* s);
  /// Removes a session that is going away from the pending flush list.
  void forget(Member* s) noexcept;

  /// Scratch buffer for plain sessions' reads: idle connections then own no read buffer.
  std::span<std::byte> read_buffer() noexcept { return {read_buffer_.get(), k_read_buffer_size}; }
  /// Scratch buffer where a write of many small frames is gathered into one (used within one send()).
  std::span<std::byte> write_buffer() noexcept { return {write_buffer_.get(), k_write_buffer_size}; }
  static constexpr std::size_t k_write_buffer_size = 64 * 1024;

  /// Where plain sessions wait for readiness (cheaper per connection than asio's reactor).
  Poller& poller() noexcept { return poller_; }

  ShardCounters counters;

 private:
  void flush();
  static void prefetch_hot(const Member* s) noexcept;

  static constexpr std::size_t k_read_buffer_size = 64 * 1024;
  static constexpr std::size_t k_prefetch_ahead = 8;  // members between a prefetch and its use (walk)
  static constexpr std::size_t k_flush_batch = 512;   // sessions written per handler before the loop polls again
  asio::io_context& ioc_;
  std::size_t index_;
  std::unique_ptr<std::byte[]> read_buffer_;
  std::unique_ptr<std::byte[]> write_buffer_;
  Poller poller_;
  std::unique_ptr<Throttle> throttle_;
  std::vector<PendingFrame> batch_;  // taken from a Group::pending; swapped, so both keep their capacity
  std::vector<Member*> dirty_;
  std::size_t flush_pos_ = 0;  // next dirty_ entry to write in the current pass
  bool flush_posted_ = false;
};

}  // namespace detail
}  // namespace fanout

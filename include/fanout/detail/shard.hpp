// fanout/detail/shard.hpp — per-shard state shared by every server and the hub on that shard.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <asio/io_context.hpp>

#include "fanout/detail/poller.hpp"
#include "fanout/outbound_queue.hpp"

namespace fanout {
class Session;
namespace detail {

struct Topic;

/// Counters written by the shard's thread only and read by anyone (stats scrapes).
struct ShardCounters {
  std::atomic<std::uint64_t> deliveries{0};
  std::atomic<std::uint64_t> dropped_newest{0};
  std::atomic<std::uint64_t> dropped_oldest{0};
  std::atomic<std::uint64_t> conflated{0};
  std::atomic<std::uint64_t> disconnected_slow{0};
  std::atomic<std::uint64_t> writes{0};  // gather-writes (syscalls) that carried data

  // Single writer: a plain load and store, no locked instruction on the hot path.
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

class Shard {
 public:
  Shard(asio::io_context& ioc, std::size_t index);

  asio::io_context& context() noexcept { return ioc_; }
  std::size_t index() const noexcept { return index_; }

  /// Hands `frame` to every member of `topic` on this shard. Shard thread only.
  void deliver(Topic& topic, const FrameRef& frame);
  /// Schedules `s` for a gather-write at the end of this loop turn. Shard thread only.
  void mark_dirty(Session* s);
  /// Removes a session that is going away from the pending flush list.
  void forget(Session* s) noexcept;

  /// Scratch buffer for plain sessions' reads: idle connections then own no read buffer.
  std::span<std::byte> read_buffer() noexcept { return {read_buffer_.get(), k_read_buffer_size}; }

  /// Where plain sessions wait for readiness (cheaper per connection than asio's reactor).
  Poller& poller() noexcept { return poller_; }

  ShardCounters counters;

 private:
  void flush();

  static constexpr std::size_t k_read_buffer_size = 64 * 1024;
  static constexpr std::size_t k_prefetch_ahead = 8;  // members between a prefetch and its use
  static constexpr std::size_t k_flush_batch = 512;   // sessions written per handler before the loop polls again
  asio::io_context& ioc_;
  std::size_t index_;
  std::unique_ptr<std::byte[]> read_buffer_;
  Poller poller_;
  std::vector<Session*> dirty_;
  std::size_t flush_pos_ = 0;  // next dirty_ entry to write in the current pass
  bool flush_posted_ = false;
};

}  // namespace detail
}  // namespace fanout

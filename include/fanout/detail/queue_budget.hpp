// fanout/detail/queue_budget.hpp — a shard's share of the server-wide queue budget.
//
// Every tick the shard compares what all queues hold (queue_memory(), process-wide) with the budget.
// Past it, the shard lowers a cap on queued frames per client, cut from the top: the cap is the water
// level that brings its queues' frames down by the ratio that puts the process at 3/4 of the budget,
// so the clients furthest behind are cut first and the ones keeping up (short queues) never. Every
// delivery past the cap goes through the client's policy with max_frames lowered to it (drop_oldest
// trims, conflate conflates, drop_newest refuses, disconnect disconnects), and the tick trims and
// compacts the queues above it. Below half the budget the cap doubles back until it is gone.
//
// Thread safety: the shard's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace fanout::detail {

/// The largest level L such that sum(min(length, L)) <= target: the per-queue cap that removes
/// frames from the longest queues first. 0 when even that cannot meet target (target 0).
std::size_t water_level(std::span<const std::uint32_t> lengths, std::size_t target) noexcept;

class QueueBudget {
 public:
  static constexpr std::size_t k_none = SIZE_MAX;

  /// Once per tick: `used` and `budget` in bytes (process-wide), `lengths` this shard's queues in
  /// frames. Returns the cap in force (k_none: no pressure).
  std::size_t update(std::size_t used, std::size_t budget, std::span<const std::uint32_t> lengths) noexcept;
  /// Frames a client's queue may hold now (k_none: only its own limits apply). Read per delivery.
  std::size_t cap_frames() const noexcept { return cap_; }

  std::vector<std::uint32_t> lengths;  // scratch for the tick: no allocation once grown

 private:
  std::size_t cap_ = k_none;
};

}  // namespace fanout::detail

// fanout/detail/throttle.hpp — a shard's throttled delivery: one TimerWheel and one asio timer for
// every throttled lane on the shard (lane.hpp), not a timer per client.
//
// Publishes walked on the shard are offered to each lane of the topic (a reference per frame, into
// its ConflatingBuffer). A lane whose buffer was empty is put on the wheel for its next tick: an
// interval after its last flush, or the next tick when that has passed. At the tick the lane's
// buffer moves into its group's log and its members are flagged (Shard::walk), as a publish does
// for unthrottled members. A lane with nothing buffered is not on the wheel and costs nothing.
//
// Thread safety: the shard's thread only.
#pragma once

#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "fanout/detail/lane.hpp"
#include "fanout/detail/timer_wheel.hpp"

namespace fanout::detail {

class Shard;

class Throttle {
 public:
  /// The wheel's resolution: a lane's ticks fall on multiples of it (intervals are rounded up to it).
  static constexpr std::chrono::milliseconds k_tick{10};

  explicit Throttle(Shard& shard);
  Throttle(const Throttle&) = delete;
  Throttle& operator=(const Throttle&) = delete;

  /// Offers frames just walked on this shard (in seq order) to the lanes in the list at `head`.
  void offer(Lane* head, std::span<const PendingFrame> frames);
  /// Takes `lane` off the wheel; before it is destroyed (its last member left).
  void forget(Lane& lane) noexcept { wheel_.cancel(lane); }

  /// Wheel ticks in `interval_ms` (at least one).
  static std::uint64_t ticks_of(std::uint32_t interval_ms) noexcept {
    const auto t = static_cast<std::uint64_t>(k_tick.count());
    return std::max<std::uint64_t>(1, (interval_ms + t - 1) / t);
  }

 private:
  /// Moves the lane's buffer into its group's log and flags its members.
  void flush(Lane& lane);
  /// The current tick, rounded down (`up`: rounded up).
  std::uint64_t tick_now(bool up = false) const noexcept;
  void arm();
  void on_timer();

  Shard& shard_;
  TimerWheel wheel_;
  asio::steady_timer timer_;
  const std::chrono::steady_clock::time_point origin_;
  std::optional<std::uint64_t> armed_for_;  // the tick the timer waits for
};

}  // namespace fanout::detail

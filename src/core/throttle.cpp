#include "fanout/detail/throttle.hpp"

#include <algorithm>

#include "fanout/detail/shard.hpp"

namespace fanout::detail {

Throttle::Throttle(Shard& shard)
    : shard_(shard), timer_(shard.context()), origin_(std::chrono::steady_clock::now() - k_tick) {}

std::uint64_t Throttle::tick_now(bool up) const noexcept {
  const auto elapsed = std::chrono::steady_clock::now() - origin_;
  const auto tick = std::chrono::duration_cast<std::chrono::nanoseconds>(k_tick).count();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  return static_cast<std::uint64_t>((ns + (up ? tick - 1 : 0)) / tick);
}

void Throttle::offer(Lane* head, std::span<const PendingFrame> frames) {
  if (frames.empty()) return;
  std::uint64_t conflated = 0;
  bool scheduled = false;
  for (Lane* lane = head; lane; lane = lane->next.get()) {
    for (const auto& p : frames) conflated += lane->buffer.offer(PendingFrame{p.frame, p.envelope});
    if (lane->buffer_over_limit()) {
      // More distinct keys within one interval than a group's log may hold: deliver them now.
      wheel_.cancel(*lane);
      flush(*lane);
    } else if (!lane->scheduled()) {
      // Its last flush was an interval ago or more (rounded up to a whole tick), or it is due then.
      wheel_.schedule(*lane, std::max(lane->last_flush + ticks_of(lane->interval_ms), tick_now() + 1));
      scheduled = true;
    }
  }
  if (conflated) ShardCounters::add(shard_.counters.throttle_conflated, conflated);
  if (scheduled) arm();
}

void Throttle::flush(Lane& lane) {
  // Rounded up: the next flush is due at least a whole interval after this one, in real time.
  lane.last_flush = tick_now(true);
  if (lane.buffer.empty()) return;
  ShardCounters::add(shard_.counters.throttle_flushes, 1);
  lane.buffer.take([&lane](PendingFrame&& p) { lane.group.append(std::move(p)); });
  shard_.walk(lane.topic, lane.group);
}

void Throttle::arm() {
  const auto wake = wheel_.next_wake();
  if (!wake || (armed_for_ && *armed_for_ <= *wake)) return;
  armed_for_ = wake;
  timer_.expires_at(origin_ + k_tick * static_cast<std::int64_t>(*wake));  // cancels an earlier wait
  timer_.async_wait([this](const std::error_code& ec) {
    if (ec) return;  // re-armed, or the shard is going away
    on_timer();
  });
}

void Throttle::on_timer() {
  armed_for_.reset();
  wheel_.advance(tick_now(), [this](WheelEntry& e) { flush(static_cast<Lane&>(e)); });
  arm();
}

}  // namespace fanout::detail

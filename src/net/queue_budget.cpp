#include "fanout/detail/queue_budget.hpp"

#include <algorithm>
#include <bit>

#include "fanout/detail/queue_memory.hpp"
#include "fanout/detail/retry_advice.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/hub.hpp"
#include "fanout/server.hpp"

namespace fanout {
namespace detail {

std::size_t water_level(std::span<const std::uint32_t> lengths, std::size_t target) noexcept {
  const auto held = [&](std::size_t level) {
    std::size_t sum = 0;
    for (const std::uint32_t n : lengths) sum += std::min<std::size_t>(n, level);
    return sum;
  };
  std::size_t lo = 0, hi = 0;
  for (const std::uint32_t n : lengths) hi = std::max<std::size_t>(hi, n);
  if (held(hi) <= target) return hi;
  while (lo < hi) {  // largest level with held(level) <= target; held is monotonic
    const std::size_t mid = lo + (hi - lo + 1) / 2;
    if (held(mid) <= target)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

std::size_t QueueBudget::update(std::size_t used, std::size_t budget, std::span<const std::uint32_t> queues) noexcept {
  if (budget == 0) return cap_ = k_none;
  if (used > budget) {
    std::size_t total = 0;
    for (const std::uint32_t n : queues) total += n;
    if (total == 0) return cap_;  // what is held is not in this shard's queues
    // Memory held follows the frames queued (slots, and the frames the oldest heads keep alive).
    const double ratio = 0.75 * static_cast<double>(budget) / static_cast<double>(used);
    const auto target = static_cast<std::size_t>(static_cast<double>(total) * ratio);
    const std::size_t level = std::max(water_level(queues, target), k_budget_floor_frames);
    cap_ = std::min(cap_, level);
  } else if (used < budget / 2 && cap_ != k_none) {
    cap_ = cap_ >= (std::size_t{1} << 30) ? k_none : cap_ * 2;
  }
  return cap_;
}

void ServerShard::enforce_budget() {
  auto& memory = queue_memory();
  memory.history_bytes.store(server.hub().history_bytes(), std::memory_order_relaxed);
  const std::size_t used = memory.used(), limit = memory.budget.load(std::memory_order_relaxed);
  // The queue lengths only matter past the budget: nothing per connection is kept otherwise.
  budget.lengths.clear();
  if (limit != 0 && used > limit)
    for (const Session* s : sessions_) budget.lengths.push_back(static_cast<std::uint32_t>(s->queue_.frames()));
  else if (budget.lengths.capacity() != 0)
    budget.lengths.shrink_to_fit();
  const std::size_t own = session_options.queue.max_frames;
  std::size_t cap = budget.update(used, limit, budget.lengths);
  if (cap >= own) cap = QueueBudget::k_none;  // a cap above every client's own limit changes nothing
  budget_cap.store(cap == QueueBudget::k_none ? 0 : cap, std::memory_order_relaxed);
  if (cap == QueueBudget::k_none) return;
  BackpressureCounters counters;
  // Backwards: a disconnect may swap-remove a session into a visited slot.
  for (std::size_t i = sessions_.size(); i-- > 0;)
    if (i < sessions_.size()) sessions_[i]->apply_budget(cap, counters);
  shard.add_counters(counters);
}

}  // namespace detail

void Session::apply_budget(std::size_t max_frames, BackpressureCounters& counters) {
  if (state_ != State::open) return;
  if (queue_.frames() > max_frames) {
    const std::string_view policy_name = policy().name();
    if (policy_name == "disconnect") {
      ++counters.disconnected;
      ++counters.budget_disconnected;
      close_overloaded();
      return;
    }
    // conflate keeps the newest value per (topic, key) first: a client behind on a few busy keys
    // loses only superseded values, and gets every key's latest.
    if (policy_name == "conflate") counters.budget_dropped += queue_.conflate_to(max_frames, counters);
    // drop_newest keeps what it holds and refuses what comes (OutboundQueue::push); every other
    // policy (and conflate, when distinct keys alone exceed the cap) loses the oldest frames first.
    if (policy_name != "drop_newest") counters.budget_dropped += queue_.trim_to(max_frames, counters);
  }
  // A trimmed queue keeps its ring until compacted; rings up to twice the cap are left alone.
  if (queue_.capacity() > 2 * std::bit_ceil(max_frames)) queue_.compact();
}

void Session::close_overloaded() {
  // The server is over its budget (not this client's own limit): overload, come back later.
  const auto& o = owner_.options();
  close(CloseCode::try_again_later,
        detail::retry_close_reason("overload", detail::jittered(o.retry_after, o.retry_jitter)));
}

}  // namespace fanout

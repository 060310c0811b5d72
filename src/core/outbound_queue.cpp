#include "fanout/outbound_queue.hpp"

#include <algorithm>
#include <bit>
#include <new>
#include <type_traits>
#include <vector>

#include "fanout/detail/queue_memory.hpp"
#include "fanout/detail/small_ring_pool.hpp"
#include "fanout/policy.hpp"

namespace fanout {

OutboundQueue::Result OutboundQueue::push(FrameRef frame, const OverflowContext& context, BackpressurePolicy& policy,
                                          std::size_t budget_frames) {
  const bool fits_own = fits(frame->size(), context.limits);
  // A full ring about to grow is the moment memory grows: the one place the (shared) budget is read.
  const bool grow_refused =
      count_ == cap_ && cap_ >= detail::k_budget_floor_frames && detail::queue_memory().over_budget();
  if (fits_own && count_ < budget_frames && !grow_refused) {
    append({frame.detach(), context.topic_id});
    return Result::queued;
  }
  if (!fits_own) return overflow(std::move(frame), context, policy);
  return overflow_budget(std::move(frame), context, policy, std::min<std::size_t>(budget_frames, count_));
}

OutboundQueue::Result OutboundQueue::overflow(FrameRef frame, const OverflowContext& context,
                                              BackpressurePolicy& policy) {
  BackpressureCounters& counters = context.counters;
  switch (policy.on_overflow(*this, frame, context)) {
    case BackpressurePolicy::Verdict::placed: return Result::queued;
    case BackpressurePolicy::Verdict::drop:
      ++counters.dropped_newest;
      if (counters.observer) counters.observer->on_drop(context.topic_id);
      return Result::dropped;
    case BackpressurePolicy::Verdict::disconnect: ++counters.disconnected; return Result::disconnect;
    case BackpressurePolicy::Verdict::enqueue: break;
  }
  // The limit is a promise about memory: a policy that made too little room loses the frame.
  if (!fits(frame->size(), context.limits)) {
    ++counters.dropped_newest;
    if (counters.observer) counters.observer->on_drop(context.topic_id);
    return Result::dropped;
  }
  append({frame.detach(), context.topic_id});
  return Result::queued;
}

OutboundQueue::Result OutboundQueue::overflow_budget(FrameRef frame, const OverflowContext& context,
                                                     BackpressurePolicy& policy, std::size_t max_frames) {
  // The policy acts as if the session's limit were what the budget leaves it: drop_oldest trims,
  // conflate conflates, drop_newest refuses, disconnect disconnects.
  Limits squeezed = context.limits;
  squeezed.max_frames = max_frames;
  const OverflowContext budget_context{.topic = context.topic,
                                       .topic_id = context.topic_id,
                                       .key_hash = context.key_hash,
                                       .session = context.session,
                                       .limits = squeezed,
                                       .counters = context.counters};
  BackpressureCounters& c = context.counters;
  const BackpressureCounters before = c;
  const Result r = overflow(std::move(frame), budget_context, policy);
  c.budget_dropped += (c.dropped_newest - before.dropped_newest) + (c.dropped_oldest - before.dropped_oldest) +
                      (c.conflated - before.conflated);
  c.budget_disconnected += c.disconnected - before.disconnected;
  return r;
}

bool OutboundQueue::push_reply(FrameRef frame, const Limits& limits) {
  if (bytes_ + frame->size() > limits.max_bytes + limits.control_reserve_bytes ||
      count_ + 1 > limits.max_frames + limits.control_reserve_frames)
    return false;
  append({frame.detach(), 0});
  return true;
}

void OutboundQueue::push_control(FrameRef frame) { append({frame.detach(), 0}); }

namespace {
constexpr std::uint32_t k_first_ring = 8;  // slots of a queue's first ring
}

// The first ring of every queue comes from the small-ring pool: it is allocated when a session's
// first reply is queued and freed when it goes idle, and from the general heap it would leave a
// hole between long-lived objects each time (detail/small_ring_pool.hpp).
OutboundQueue::Entry* OutboundQueue::allocate_ring(std::uint32_t cap) {
  static_assert(k_first_ring * sizeof(Entry) == detail::k_small_ring_bytes);
  static_assert(std::is_trivially_copyable_v<Entry> && std::is_trivially_destructible_v<Entry>);
  if (cap != k_first_ring) return new Entry[cap];
  auto* ring = static_cast<Entry*>(detail::allocate_small_ring());
  for (std::uint32_t i = 0; i < cap; ++i) new (ring + i) Entry{};
  return ring;
}

void OutboundQueue::free_ring(Entry* ring, std::uint32_t cap) noexcept {
  if (cap == k_first_ring)
    detail::free_small_ring(ring);
  else
    delete[] ring;
}

void OutboundQueue::reallocate(std::uint32_t cap) {
  Entry* buf = allocate_ring(cap);
  for (std::uint32_t i = 0; i < count_; ++i) buf[i] = at(i);
  auto& memory = detail::queue_memory().slot_bytes;
  memory.fetch_add(std::size_t{cap} * sizeof(Entry), std::memory_order_relaxed);
  memory.fetch_sub(slot_bytes(), std::memory_order_relaxed);
  if (buf_) free_ring(buf_, cap_);
  buf_ = buf;
  cap_ = cap;
  head_ = 0;
}

void OutboundQueue::compact() {
  if (count_ == 0) {
    clear();
    return;
  }
  const std::uint32_t want = std::max<std::uint32_t>(k_first_ring, std::bit_ceil(count_));
  if (want < cap_) reallocate(want);
}

void OutboundQueue::append(Entry e) {
  if (count_ == cap_) reallocate(cap_ ? cap_ * 2 : k_first_ring);
  buf_[(head_ + count_) & (cap_ - 1)] = e;
  ++count_;
  bytes_ += e.frame->size();
}

void OutboundQueue::consume(std::size_t n) noexcept {
  bytes_ -= n;
  while (n > 0) {
    Entry& e = at(0);
    const std::size_t left = e.frame->size() - head_offset_;
    if (n < left) {
      head_offset_ += static_cast<std::uint32_t>(n);
      return;
    }
    n -= left;
    FrameRef::adopt(e.frame->full());  // releases (a delta form's reference is its full frame's)
    head_offset_ = 0;
    head_ = (head_ + 1) & (cap_ - 1);
    --count_;
  }
}

void OutboundQueue::clear() noexcept {
  for (std::uint32_t i = 0; i < count_; ++i) FrameRef::adopt(at(i).frame->full());
  if (cap_) detail::queue_memory().slot_bytes.fetch_sub(slot_bytes(), std::memory_order_relaxed);
  if (buf_) free_ring(buf_, cap_);
  buf_ = nullptr;
  cap_ = head_ = count_ = head_offset_ = 0;
  bytes_ = 0;
}

void OutboundQueue::clear_unsent() noexcept {
  if (head_offset_ == 0) {
    clear();
    return;
  }
  while (count_ > 1) {
    const Entry gone = at(count_ - 1);
    bytes_ -= gone.frame->size();
    --count_;
    FrameRef::adopt(gone.frame->full());
  }
}

void OutboundQueue::shrink_if_empty() noexcept {
  if (count_ == 0 && buf_) clear();
}

void OutboundQueue::erase_at(std::size_t i) noexcept {
  const Entry gone = at(i);
  bytes_ -= gone.frame->size();
  // Shift the shorter side; dropping near the head (the usual case) moves at most one entry.
  if (i < count_ / 2) {
    for (std::size_t k = i; k > 0; --k) at(k) = at(k - 1);
    head_ = (head_ + 1) & (cap_ - 1);
  } else {
    for (std::size_t k = i; k + 1 < count_; ++k) at(k) = at(k + 1);
  }
  --count_;
  FrameRef::adopt(gone.frame->full());
}

void OutboundQueue::show_delta(std::size_t i, bool delta) noexcept {
  Entry& e = at(i);
  const Frame* full = e.frame->full();
  const Frame* shown = delta && full->delta() ? full->delta() : full;
  if (shown == e.frame) return;
  bytes_ = bytes_ - e.frame->size() + shown->size();
  e.frame = shown;  // the entry's reference stays its full frame's, which owns the delta
}

bool OutboundQueue::drop_oldest(BackpressureCounters& counters) noexcept {
  // A partly written head frame must finish, or the stream would be corrupt; control frames stay.
  for (std::uint32_t i = head_offset_ > 0 ? 1 : 0; i < count_; ++i) {
    const std::uint64_t topic = at(i).topic_id;
    if (topic == 0) continue;
    erase_at(i);
    ++counters.dropped_oldest;
    if (counters.observer) counters.observer->on_drop(topic);
    return true;
  }
  return false;
}

std::size_t OutboundQueue::trim_to(std::size_t max_frames, BackpressureCounters& counters) noexcept {
  std::size_t n = 0;
  while (count_ > max_frames && drop_oldest(counters)) ++n;
  return n;
}

std::size_t OutboundQueue::conflate_to(std::size_t max_frames, BackpressureCounters& counters) {
  if (count_ <= max_frames) return 0;
  // Sorted by (topic, key, position): in each run of equal keys all but the last are superseded.
  struct Slot {
    std::uint64_t topic_id;
    std::uint32_t key;
    std::uint32_t index;
    auto operator<=>(const Slot&) const = default;
  };
  std::vector<Slot> slots;
  slots.reserve(count_);
  const std::uint32_t first = head_offset_ > 0 ? 1 : 0;  // a partly written head must finish
  for (std::uint32_t i = first; i < count_; ++i)
    if (at(i).topic_id != 0) slots.push_back({at(i).topic_id, at(i).frame->key_hash(), i});
  std::sort(slots.begin(), slots.end());
  std::vector<bool> superseded(count_, false);
  for (std::size_t k = 0; k + 1 < slots.size(); ++k)
    superseded[slots[k].index] = slots[k].topic_id == slots[k + 1].topic_id && slots[k].key == slots[k + 1].key;
  // One pass from the head: superseded frames go (oldest first) while the queue is over; the rest
  // slide down in order.
  std::uint32_t kept = 0, dropped = 0;
  for (std::uint32_t i = 0; i < count_; ++i) {
    const Entry e = at(i);
    if (superseded[i] && count_ - dropped > max_frames) {
      bytes_ -= e.frame->size();
      FrameRef::adopt(e.frame);
      ++dropped;
    } else {
      at(kept++) = e;
    }
  }
  count_ = kept;
  counters.conflated += dropped;
  return dropped;
}

bool OutboundQueue::replace_latest_of_topic(std::uint64_t topic_id, FrameRef& frame,
                                            BackpressureCounters& counters) noexcept {
  const std::uint32_t first = head_offset_ > 0 ? 1 : 0;
  const std::uint32_t key = frame->key_hash();
  for (std::uint32_t i = count_; i-- > first;) {
    const Entry& e = at(i);
    if (e.topic_id != topic_id || e.frame->key_hash() != key) continue;
    // The newer value goes to the back, so what the client drains stays in seq order.
    erase_at(i);
    append({frame.detach(), topic_id});
    ++counters.conflated;
    if (counters.observer) counters.observer->on_drop(topic_id);
    return true;
  }
  return false;
}

}  // namespace fanout

#include "fanout/outbound_queue.hpp"

#include <algorithm>
#include <bit>

#include "fanout/policy.hpp"

namespace fanout {

OutboundQueue::Result OutboundQueue::push(FrameRef frame, const OverflowContext& context, BackpressurePolicy& policy) {
  const Limits& limits = context.limits;
  BackpressureCounters& counters = context.counters;
  if (!fits(frame->size(), limits)) {
    switch (policy.on_overflow(*this, frame, context)) {
      case BackpressurePolicy::Verdict::placed: return Result::queued;
      case BackpressurePolicy::Verdict::drop: ++counters.dropped_newest; return Result::dropped;
      case BackpressurePolicy::Verdict::disconnect: ++counters.disconnected; return Result::disconnect;
      case BackpressurePolicy::Verdict::enqueue: break;
    }
    // The limit is a promise about memory: a policy that made too little room loses the frame.
    if (!fits(frame->size(), limits)) {
      ++counters.dropped_newest;
      return Result::dropped;
    }
  }
  append({frame.detach(), context.topic_id});
  return Result::queued;
}

bool OutboundQueue::push_reply(FrameRef frame, const Limits& limits) {
  if (bytes_ + frame->size() > limits.max_bytes + limits.control_reserve_bytes ||
      count_ + 1 > limits.max_frames + limits.control_reserve_frames)
    return false;
  append({frame.detach(), 0});
  return true;
}

void OutboundQueue::push_control(FrameRef frame) { append({frame.detach(), 0}); }

void OutboundQueue::append(Entry e) {
  if (count_ == cap_) {
    const std::uint32_t cap = cap_ ? cap_ * 2 : 8;
    auto buf = std::make_unique<Entry[]>(cap);
    for (std::uint32_t i = 0; i < count_; ++i) buf[i] = at(i);
    buf_ = std::move(buf);
    cap_ = cap;
    head_ = 0;
  }
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
    FrameRef::adopt(e.frame);  // releases
    head_offset_ = 0;
    head_ = (head_ + 1) & (cap_ - 1);
    --count_;
  }
}

void OutboundQueue::clear() noexcept {
  for (std::uint32_t i = 0; i < count_; ++i) FrameRef::adopt(at(i).frame);
  buf_.reset();
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
    FrameRef::adopt(gone.frame);
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
  FrameRef::adopt(gone.frame);
}

bool OutboundQueue::drop_oldest(BackpressureCounters& counters) noexcept {
  // A partly written head frame must finish, or the stream would be corrupt; control frames stay.
  for (std::uint32_t i = head_offset_ > 0 ? 1 : 0; i < count_; ++i) {
    if (at(i).topic_id == 0) continue;
    erase_at(i);
    ++counters.dropped_oldest;
    return true;
  }
  return false;
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
    return true;
  }
  return false;
}

}  // namespace fanout

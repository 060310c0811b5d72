#include "fanout/detail/history.hpp"

#include <algorithm>

namespace fanout::detail {

std::size_t History::cost(const HistoryEntry& e) noexcept {
  return sizeof(HistoryEntry) + e.frame->size() + (e.envelope ? e.envelope->size() : 0) + e.key.capacity();
}

void History::push(HistoryEntry e, std::size_t max_messages, std::size_t max_bytes) {
  if (max_messages == 0) {
    floor_ = e.seq;
    return;
  }
  bytes_ += cost(e);
  ring_.push_back(std::move(e));
  // The newest entry stays even when it alone exceeds max_bytes: `since` must reach the present.
  while ((ring_.size() > max_messages || bytes_ > max_bytes) && pop_oldest()) {
  }
}

bool History::pop_oldest() noexcept {
  if (ring_.size() <= 1) return false;
  bytes_ -= cost(ring_.front());
  floor_ = ring_.front().seq;
  ring_.pop_front();
  return true;
}

void History::set_envelope(std::size_t i, FrameRef envelope) noexcept {
  auto& e = ring_[i];
  bytes_ -= cost(e);
  e.envelope = std::move(envelope);
  bytes_ += cost(e);
}

std::size_t History::after(std::uint64_t since) const noexcept {
  auto it = std::upper_bound(ring_.begin(), ring_.end(), since,
                             [](std::uint64_t s, const HistoryEntry& e) { return s < e.seq; });
  return static_cast<std::size_t>(it - ring_.begin());
}

}  // namespace fanout::detail

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

std::size_t Snapshot::cost(const Entry& e) noexcept {
  // The list node and the index's node and bucket, about: what a key costs besides its frames.
  constexpr std::size_t k_overhead = sizeof(Entry) + 2 * sizeof(void*) + 48;
  return k_overhead + e.key.capacity() + e.frame->size() + (e.envelope ? e.envelope->size() : 0);
}

void Snapshot::put(std::string_view key, std::uint64_t seq, FrameRef frame, FrameRef envelope, std::size_t max_keys,
                   std::size_t max_bytes) {
  if (max_keys == 0) return;
  if (auto it = index_.find(key); it != index_.end()) {
    Entry& e = *it->second;
    bytes_ -= cost(e);
    e.seq = seq;
    e.frame = std::move(frame);
    e.envelope = std::move(envelope);
    bytes_ += cost(e);
    entries_.splice(entries_.end(), entries_, it->second);  // the newest now: the list stays in seq order
  } else {
    entries_.push_back({std::string(key), seq, std::move(frame), std::move(envelope)});
    index_.emplace(entries_.back().key, std::prev(entries_.end()));
    bytes_ += cost(entries_.back());
  }
  while ((entries_.size() > max_keys || bytes_ > max_bytes) && pop_oldest()) {
  }
}

bool Snapshot::pop_oldest() noexcept {
  if (entries_.size() <= 1) return false;
  bytes_ -= cost(entries_.front());
  index_.erase(entries_.front().key);
  entries_.pop_front();
  return true;
}

void Snapshot::set_envelope(Entry& e, FrameRef envelope) noexcept {
  bytes_ -= cost(e);
  e.envelope = std::move(envelope);
  bytes_ += cost(e);
}

}  // namespace fanout::detail

// fanout/detail/lane.hpp — throttled delivery: the members of a topic on one shard that asked for
// the same "interval_ms", their conflating buffer, and their place on the shard's timer wheel.
//
// Encode once survives throttling. A publish does not reach a throttled member directly: the shard
// offers its frame to each lane's ConflatingBuffer (the same immutable Frame, one reference), which
// keeps the newest frame per key since the lane's last tick. At the tick (detail::Throttle, one
// TimerWheel per shard) the buffer's frames, in seq order, go into the lane's own Group log and its
// members are flagged exactly as the unthrottled ones are at a publish (group.hpp): one flush per
// lane per tick, whatever the number of members. A member's seq then jumps over what was conflated.
//
// Thread safety: a lane is touched by its shard's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fanout/detail/group.hpp"
#include "fanout/detail/timer_wheel.hpp"

namespace fanout::detail {

struct Topic;

/// The newest frame per key offered since the last take, in seq order. Frames without a key share
/// one key (0), so a topic without keys delivers only its newest message per tick. Keys are the
/// frame's 32-bit key hash, as the conflate policy's are.
class ConflatingBuffer {
 public:
  /// Keeps `p` as its key's newest frame (frames are offered in seq order); true when it replaced one.
  bool offer(PendingFrame&& p) {
    const std::uint32_t key = p.frame->key_hash();
    bytes_ += p.frame->size();
    auto [it, fresh] = where_.try_emplace(key, entries_.size());
    if (!fresh) {
      // The older frame leaves a hole; the newest goes to the end, keeping seq order.
      bytes_ -= entries_[it->second].frame->size();
      entries_[it->second] = {};
      ++holes_;
      it->second = entries_.size();
    }
    entries_.push_back(std::move(p));
    if (holes_ > 16 && holes_ > entries_.size() / 2) compact();
    return !fresh;
  }

  /// Moves the frames out, oldest first, and empties the buffer.
  template <class Each>
  void take(Each&& each) {
    for (auto& e : entries_)
      if (e.frame) each(std::move(e));
    clear();
  }
  void clear() noexcept {
    entries_.clear();
    where_.clear();
    holes_ = 0;
    bytes_ = 0;
  }

  /// Distinct keys held.
  std::size_t size() const noexcept { return where_.size(); }
  bool empty() const noexcept { return where_.empty(); }
  /// Bytes of the frames held.
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void compact() {
    std::size_t out = 0;
    for (auto& e : entries_) {
      if (!e.frame) continue;
      where_[e.frame->key_hash()] = out;
      entries_[out++] = std::move(e);
    }
    entries_.resize(out);
    holes_ = 0;
  }

  std::vector<PendingFrame> entries_;                     // seq order; an empty frame is a hole left by a newer one
  std::unordered_map<std::uint32_t, std::size_t> where_;  // key hash -> place in entries_
  std::size_t holes_ = 0;
  std::size_t bytes_ = 0;
};

/// A topic's throttled members on one shard with one interval. Lives while it has members (the
/// topic's lane list on that shard owns it); scheduled on the shard's wheel while its buffer holds
/// frames.
struct Lane : WheelEntry {
  Lane(Topic& t, std::uint32_t interval, const fanout::Group::Limits& limits) : topic(t), interval_ms(interval) {
    group.limits = limits;
  }

  Topic& topic;
  const std::uint32_t interval_ms;
  ConflatingBuffer buffer;
  /// The lane's members, their cursors and flags, and the log they pull from (group.hpp).
  Group group;
  /// The wheel tick of the last flush (0: never): the next is due an interval after it.
  std::uint64_t last_flush = 0;
  std::unique_ptr<Lane> next;  // the topic's next lane on this shard

  /// Past the group's log bounds the buffer flushes before its tick rather than grow (many distinct
  /// keys within one interval).
  bool buffer_over_limit() const noexcept {
    return buffer.size() > group.limits.log_max_frames || buffer.bytes() > group.limits.log_max_bytes;
  }
};

/// The lane of `interval_ms` in the list at `head`, or nullptr.
inline Lane* find_lane(const std::unique_ptr<Lane>& head, std::uint32_t interval_ms) noexcept {
  for (Lane* l = head.get(); l; l = l->next.get())
    if (l->interval_ms == interval_ms) return l;
  return nullptr;
}

inline std::size_t lane_count(const std::unique_ptr<Lane>& head) noexcept {
  std::size_t n = 0;
  for (Lane* l = head.get(); l; l = l->next.get()) ++n;
  return n;
}

/// Unlinks and destroys `lane` from the list at `head` (the caller took it off the wheel).
inline void erase_lane(std::unique_ptr<Lane>& head, const Lane* lane) noexcept {
  for (std::unique_ptr<Lane>* p = &head; *p; p = &(*p)->next)
    if (p->get() == lane) {
      std::unique_ptr<Lane> gone = std::move(*p);
      *p = std::move(gone->next);
      return;
    }
}

}  // namespace fanout::detail

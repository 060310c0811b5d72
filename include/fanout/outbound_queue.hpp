// fanout/outbound_queue.hpp — a session's queue of frames waiting for the socket.
//
// Holds references to shared frames (never copies), counts bytes and frames, and, when a data frame
// would exceed the limits, lets a BackpressurePolicy decide what gives. The writer takes the
// unwritten bytes of the frames from the head (as an iovec array, detail/gather.hpp), so everything
// queued goes out in one gather-write.
// An empty queue owns no memory beyond this object until the first push.
//
// Thread safety: none; a queue belongs to one session, which lives on one shard thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "fanout/export.hpp"
#include "fanout/frame.hpp"

namespace fanout {

class BackpressurePolicy;
struct OverflowContext;

/// Told the topic of each data frame a policy drops or replaces (a session's drop notices).
/// Thread safety: called on the queue's thread (the session's shard), during the push or trim that
/// dropped the frame; it must not touch the queue.
class FANOUT_API DropObserver {
 public:
  virtual void on_drop(std::uint64_t topic_id) noexcept = 0;

 protected:
  ~DropObserver() = default;
};

/// What happened to frames because of limits. Summed per shard, reported by Server::stats().
struct FANOUT_API BackpressureCounters {
  std::uint64_t dropped_newest = 0;
  std::uint64_t dropped_oldest = 0;
  std::uint64_t conflated = 0;
  std::uint64_t disconnected = 0;
  // Of the above, those because the server-wide queue budget was reached (Server::Options::
  // queue_budget_bytes) while the frame fitted the session's own limits.
  std::uint64_t budget_dropped = 0;  // frames dropped (oldest or newest) or conflated
  std::uint64_t budget_disconnected = 0;
  // Not a count: when set, told the topic of every frame dropped or replaced (the session that owns
  // the queue sets it around its own push).
  DropObserver* observer = nullptr;
};

class FANOUT_API OutboundQueue {
 public:
  struct Limits {
    std::size_t max_bytes = 1 << 20;  // queued bytes per session before the policy acts
    std::size_t max_frames = 16384;   // queued frames per session before the policy acts
    // Room past max_bytes / max_frames that only control replies (acks, errors, pongs) may use, so
    // they still flow to a client whose data fills its queue; past it the client is asking faster
    // than it reads, and push_reply refuses.
    std::size_t control_reserve_bytes = 64 * 1024;
    std::size_t control_reserve_frames = 1024;
  };
  enum class Result { queued, dropped, disconnect };

  OutboundQueue() = default;
  OutboundQueue(const OutboundQueue&) = delete;
  OutboundQueue& operator=(const OutboundQueue&) = delete;
  ~OutboundQueue() { clear(); }

  /// Appends a data frame of `context.topic_id` (non-zero), applying `policy` when
  /// `context.limits` would be exceeded. `context.counters` record what the policy did.
  /// `budget_frames`: the most frames the server-wide queue budget lets this queue hold now (the
  /// policy acts past it too, with max_frames lowered to it); and while the budget is exceeded the
  /// ring does not grow past detail::k_budget_floor_frames (the policy makes room instead).
  Result push(FrameRef frame, const OverflowContext& context, BackpressurePolicy& policy,
              std::size_t budget_frames = SIZE_MAX);
  /// Appends a control reply (ack, error event, pong, Session::send) when it fits within `limits`
  /// plus their control reserve; false (and nothing queued) when it does not. Never the policy's.
  [[nodiscard]] bool push_reply(FrameRef frame, const Limits& limits);
  /// Appends a frame that must go out whatever the limits (the close frame, a bounded HTTP answer).
  void push_control(FrameRef frame);

  /// The bytes of queued frame `i` (0: the head) not written yet; i < frames().
  std::span<const std::byte> unwritten(std::size_t i) const noexcept {
    const auto b = at(i).frame->bytes();
    return i == 0 ? b.subspan(head_offset_) : b;
  }
  /// Removes `n` written bytes from the head (whole frames released, a partial one remembered).
  void consume(std::size_t n) noexcept;

  /// Queued frame `i` (0: the head) and its topic's id (0: a control frame).
  const Frame* frame_at(std::size_t i) const noexcept { return at(i).frame; }
  std::uint64_t topic_at(std::size_t i) const noexcept { return at(i).topic_id; }
  /// True when part of the head frame is written (it must be finished as it is).
  bool head_started() const noexcept { return head_offset_ > 0; }
  /// For a frame of the delta form (Frame::delta_form) not started yet: shows it to the writer as
  /// its delta (`delta` and it has one) or as the full message. Dropping it releases the full frame.
  void show_delta(std::size_t i, bool delta) noexcept;

  /// The head frame when none of it is written yet (else nullptr): what the next write starts with.
  const Frame* front_unstarted() const noexcept { return count_ && head_offset_ == 0 ? at(0).frame : nullptr; }
  bool empty() const noexcept { return count_ == 0; }
  std::size_t frames() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return bytes_; }
  /// Drops every frame and frees the storage.
  void clear() noexcept;
  /// Drops every frame not yet started; a partly written one stays so the stream remains valid.
  void clear_unsent() noexcept;
  /// Frees the storage if the queue is empty (idle sessions then cost no queue memory).
  void shrink_if_empty() noexcept;
  /// Shrinks the ring to the smallest power of two (>= 8) that holds what is queued: after a trim,
  /// the slots are what a long queue costs, and they stay allocated until compacted.
  void compact();
  /// Frames the ring holds before it grows (0: no storage).
  std::size_t capacity() const noexcept { return cap_; }
  /// Bytes of the ring's storage (its capacity, not its fill).
  std::size_t slot_bytes() const noexcept { return std::size_t{cap_} * sizeof(Entry); }

  // ---- for policies ----
  /// Drops the oldest frame that is not partly written. False when there is none.
  bool drop_oldest(BackpressureCounters& counters) noexcept;
  /// Drops the oldest data frames until at most `max_frames` are queued (control frames and a
  /// partly written head stay); returns how many went.
  std::size_t trim_to(std::size_t max_frames, BackpressureCounters& counters) noexcept;
  /// Conflates down to `max_frames`: drops data frames that a newer frame of the same (topic, key)
  /// supersedes, oldest first, until at most `max_frames` are queued or none is superseded; returns
  /// how many went (counted as conflated). What stays keeps its order. Allocates (a sort of the
  /// queue's keys): for the server tick, not the delivery path.
  std::size_t conflate_to(std::size_t max_frames, BackpressureCounters& counters);
  /// Drops the queued data frame of `topic_id` with the same key as `frame` (Frame::key_hash; 0 for
  /// messages without a key) and appends `frame`: the newest value per (topic, key), in seq order.
  /// False (and `frame` untouched) when none is queued. It cannot fail to append (it just freed a slot).
  bool replace_latest_of_topic(std::uint64_t topic_id, FrameRef& frame, BackpressureCounters& counters) noexcept;
  /// True when `extra` more bytes (and one more frame) fit within `limits`.
  bool fits(std::size_t extra, const Limits& limits) const noexcept {
    return bytes_ + extra <= limits.max_bytes && count_ + 1 <= limits.max_frames;
  }

 private:
  struct Entry {
    const Frame* frame;      // owns one reference
    std::uint64_t topic_id;  // 0 for control frames, which policies never drop
  };
  Entry& at(std::size_t i) noexcept { return buf_[(head_ + i) & (cap_ - 1)]; }
  const Entry& at(std::size_t i) const noexcept { return buf_[(head_ + i) & (cap_ - 1)]; }
  void append(Entry e);
  void reallocate(std::uint32_t cap);
  Result overflow(FrameRef frame, const OverflowContext& context, BackpressurePolicy& policy);
  Result overflow_budget(FrameRef frame, const OverflowContext& context, BackpressurePolicy& policy,
                         std::size_t max_frames);
  void erase_at(std::size_t i) noexcept;  // keeps order

  static Entry* allocate_ring(std::uint32_t cap);
  static void free_ring(Entry* ring, std::uint32_t cap) noexcept;

  Entry* buf_ = nullptr;   // cap_ entries; the smallest ring from detail/small_ring_pool.hpp
  std::uint32_t cap_ = 0;  // power of two
  std::uint32_t head_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t head_offset_ = 0;  // bytes of the head frame already written
  std::size_t bytes_ = 0;          // unwritten bytes queued
};

}  // namespace fanout

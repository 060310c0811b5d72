// fanout/detail/session_delta.hpp — one session's side of "delta":"fossil" subscriptions: which
// message of each (topic, key) its client was last written, and the choice, frame by frame, between a
// delta and the full message (detail/delta_forms.hpp).
//
// The choice is made when a frame is about to go to the socket, not when it is queued: until then a
// policy may drop or conflate the frame a delta was computed against. A queued frame is shown as its
// delta only when its base is the last message of its key already written (or shown earlier in the
// same batch); what a write started is then recorded as written. Drops, conflation, late joins and
// replays thus all end in a full message, never in a delta the client cannot apply.
//
// Thread safety: none; it belongs to a session, on its shard's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "fanout/outbound_queue.hpp"

namespace fanout::detail {

class SessionDelta {
 public:
  explicit SessionDelta(std::size_t max_keys) : max_keys_(max_keys) {}

  void add_topic(std::uint64_t topic_id) { topics_.push_back(topic_id); }
  /// The subscription ended: its keys are forgotten (a new one starts with full messages).
  void remove_topic(std::uint64_t topic_id);
  bool has_topic(std::uint64_t topic_id) const noexcept;
  bool empty() const noexcept { return topics_.empty(); }

  /// Before a gather-write: shows each frame of the delta form not started yet, up to `max_bytes`
  /// (at least what the write takes), as its delta or as the full message.
  void choose(OutboundQueue& queue, std::size_t max_bytes);
  /// After a write of `n` bytes, before the queue consumes them: the frames it started are written.
  void commit(const OutboundQueue& queue, std::size_t n);

  /// Deltas and full messages of the delta form written (for /metrics).
  std::uint64_t deltas_written = 0;

 private:
  struct Key {
    std::uint64_t topic;
    std::uint32_t key_hash;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return static_cast<std::size_t>(k.topic * 0x9E3779B97F4A7C15ull) ^ k.key_hash;
    }
  };
  std::uint64_t written_seq(const Key& k) const noexcept;

  std::size_t max_keys_;
  std::vector<std::uint64_t> topics_;
  std::unordered_map<Key, std::uint64_t, KeyHash> written_;  // seq last written per (topic, key)
  std::vector<std::pair<Key, std::uint64_t>> batch_;         // shown in this choice, not written yet
};

}  // namespace fanout::detail

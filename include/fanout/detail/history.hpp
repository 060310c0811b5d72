// fanout/detail/history.hpp — a topic's recent messages, bounded by count and bytes, for recovery
// (`since` on subscribe) and the HTTP history endpoint.
//
// Thread safety: none; the topic's mutex guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "fanout/frame.hpp"

namespace fanout::detail {

struct HistoryEntry {
  std::uint64_t seq = 0;
  FrameRef frame;     // the verbatim frame every client gets
  FrameRef envelope;  // {"topic":..,"seq":..,"data":..}, built the first time a client wants it
  std::string key;    // the router's key, empty when none
};

class History {
 public:
  /// Appends (seq must grow) and forgets the oldest entries beyond `max_messages` or `max_bytes`.
  void push(HistoryEntry e, std::size_t max_messages, std::size_t max_bytes);

  bool empty() const noexcept { return ring_.empty(); }
  std::size_t size() const noexcept { return ring_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  /// Every message with seq > floor() is kept (seqs may jump where the publisher's numbering does).
  /// It rises as entries are forgotten; a topic's first message sets it to just below its seq.
  std::uint64_t floor() const noexcept { return floor_; }
  void set_floor(std::uint64_t seq) noexcept { floor_ = seq; }
  /// Seq of the oldest entry kept (0 when empty).
  std::uint64_t first_seq() const noexcept { return ring_.empty() ? 0 : ring_.front().seq; }
  /// Index of the first entry with seq > `since` (size() when none).
  std::size_t after(std::uint64_t since) const noexcept;
  /// Keeps the envelope built for entry `i`, counting its bytes.
  void set_envelope(std::size_t i, FrameRef envelope) noexcept;
  const HistoryEntry& operator[](std::size_t i) const noexcept { return ring_[i]; }

 private:
  static std::size_t cost(const HistoryEntry& e) noexcept;
  std::deque<HistoryEntry> ring_;
  std::size_t bytes_ = 0;
  std::uint64_t floor_ = 0;
};

}  // namespace fanout::detail

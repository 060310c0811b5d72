// fanout/detail/history.hpp — a topic's recent messages, bounded by count and bytes, for recovery
// (`since` on subscribe) and the HTTP history endpoint; and its snapshot (the latest message per
// key), bounded by keys and bytes.
//
// Thread safety: none; the topic's mutex guards both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

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
  /// Forgets the oldest entry (not the last one left). False when at most one remains.
  bool pop_oldest() noexcept;
  /// Keeps the envelope built for entry `i`, counting its bytes.
  void set_envelope(std::size_t i, FrameRef envelope) noexcept;
  const HistoryEntry& operator[](std::size_t i) const noexcept { return ring_[i]; }

 private:
  static std::size_t cost(const HistoryEntry& e) noexcept;
  std::deque<HistoryEntry> ring_;
  std::size_t bytes_ = 0;
  std::uint64_t floor_ = 0;
};

/// The newest message of each key (messages without a key share the key ""), in seq order: what a
/// client that asks for a snapshot, or must resync, gets first. Bounded by a number of keys and by
/// bytes (frames counted as if the snapshot held copies: they are shared with the history and the
/// queues, so this is a bound, not a measure). Past either bound the key updated longest ago goes:
/// an upstream that sends a new key in every message cannot grow it (issue 13, F6).
class Snapshot {
 public:
  struct Entry {
    std::string key;
    std::uint64_t seq = 0;
    FrameRef frame;
    FrameRef envelope;  // built the first time an envelope client wants it
  };
  using List = std::list<Entry>;

  /// Makes `frame` (seq must grow) the latest of `key`, then forgets the keys updated longest ago while
  /// there are more than `max_keys` or more than `max_bytes` (the newest stays, whatever its size).
  /// With max_keys 0 nothing is kept.
  void put(std::string_view key, std::uint64_t seq, FrameRef frame, FrameRef envelope, std::size_t max_keys,
           std::size_t max_bytes);
  /// Forgets the key updated longest ago (not the last one left). False when at most one remains.
  bool pop_oldest() noexcept;
  /// The latest entry of `key`, or nullptr.
  const Entry* find(std::string_view key) const noexcept {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &*it->second;
  }
  /// Keeps the envelope built for `e` (one of this snapshot's entries), counting its bytes.
  void set_envelope(Entry& e, FrameRef envelope) noexcept;

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  /// Oldest first: in seq order.
  List::iterator begin() noexcept { return entries_.begin(); }
  List::iterator end() noexcept { return entries_.end(); }
  List::const_iterator begin() const noexcept { return entries_.begin(); }
  List::const_iterator end() const noexcept { return entries_.end(); }

 private:
  static std::size_t cost(const Entry& e) noexcept;
  List entries_;                                                // by seq: an update moves its entry to the back
  std::unordered_map<std::string_view, List::iterator> index_;  // views of the entries' keys
  std::size_t bytes_ = 0;
};

}  // namespace fanout::detail

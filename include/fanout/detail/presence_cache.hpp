// fanout/detail/presence_cache.hpp — which users are online on which node of a cluster, as this node
// knows it: its own users (told by its Gateway) and every other node's (read from Redis, then kept
// up to date by deltas). is_online() and the counts answer from memory, so a shard thread asking
// never waits on Redis.
//
// A snapshot read races with deltas published while it is in flight; begin_resync() .. end_resync()
// buffers the deltas that arrive meanwhile and replays them on top of the snapshot (set operations
// per user are idempotent, so replaying a suffix of them leaves the current state; see
// docs/cluster.md, "Presence").
//
// Bounded: at most `max_users` (node, user) pairs from other nodes are kept; later ones are counted
// in dropped() and ignored (is_online then misses them) until a resync finds room.
//
// Thread safety: every member function from any thread (one mutex; no allocation while reading).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace fanout::detail {

class PresenceCache {
 public:
  explicit PresenceCache(std::string self, std::size_t max_users = 1'000'000);

  const std::string& self() const noexcept { return self_; }

  // ---- this node's users (its Gateway's first/last connection of a user); never dropped
  /// True when the set changed.
  bool set_local(std::string_view user, bool online);
  std::vector<std::string> local_users() const;

  // ---- other nodes (deltas and snapshots from Redis); this node's own echoes are ignored
  void add(std::string_view node, std::string_view user);
  void remove(std::string_view node, std::string_view user);
  void drop_node(std::string_view node);
  /// Starts buffering deltas; end_resync() replaces every other node with `nodes` (name -> users),
  /// then replays the buffered deltas. More than `max_buffered` deltas meanwhile: end_resync()
  /// returns false (the snapshot is applied, the caller should read again).
  void begin_resync(std::size_t max_buffered = 100'000);
  bool end_resync(std::unordered_map<std::string, std::vector<std::string>> nodes);
  /// The snapshot could not be read: keeps what is known and applies the buffered deltas.
  void abort_resync();
  bool resyncing() const;

  // ---- queries
  /// Online anywhere (this node included).
  bool online(std::string_view user) const;
  /// Distinct users online anywhere.
  std::size_t user_count() const;
  /// Nodes known to have users (this node counted when it has any).
  std::size_t node_count() const;
  std::uint64_t dropped() const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using Set = std::unordered_set<std::string, Hash, std::equal_to<>>;
  struct Delta {
    enum Kind : std::uint8_t { add, remove, drop } kind;
    std::string node, user;
  };
  bool buffer(Delta::Kind kind, std::string_view node, std::string_view user);

  void add_locked(std::string_view node, std::string_view user);
  void remove_locked(std::string_view node, std::string_view user);
  void drop_node_locked(std::string_view node);
  void count_up(std::string_view user);
  void count_down(std::string_view user);
  void replay_locked();

  const std::string self_;
  const std::size_t max_users_;
  mutable std::mutex mutex_;
  Set local_;
  std::unordered_map<std::string, Set, Hash, std::equal_to<>> remote_;           // node -> its users
  std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>> users_;  // user -> nodes holding it
  std::size_t remote_pairs_ = 0;
  std::uint64_t dropped_ = 0;
  bool resyncing_ = false;
  bool overflowed_ = false;
  std::size_t max_buffered_ = 0;
  std::vector<Delta> buffered_;
};

}  // namespace fanout::detail

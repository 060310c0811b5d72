// fanout/detail/topic_index.hpp — a Gateway's view of topics as groups: which of its connections are
// in each topic, the users among them (presence: user -> connections there) and who watches the
// topic's join/leave events. The topics of a connection are the Gateway's per-connection record
// (pointers to the names stored here). Not thread-safe: the Gateway guards it with its lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fanout/detail/user_index.hpp"

namespace fanout::detail {

/// A user's first connection joined a topic (joined) or its last one left.
struct PresenceChange {
  std::string topic;
  std::string user;
  bool joined = true;
};

class TopicIndex {
 public:
  /// `id` (bound to `user`, "" when anonymous) joined `topic`; a change when it is the user's first
  /// connection there. Returns the topic's name as stored here, for the connection's own list (valid
  /// while the topic has members), or nullptr when `id` was a member already (nothing changed).
  const std::string* join(std::string_view topic, std::uint64_t id, std::string_view user,
                          std::vector<PresenceChange>& out);
  /// `id` left `topic` (false: it was not a member); a change when it was the user's last connection
  /// there. The topic's stored name goes with its last member.
  bool leave(std::string_view topic, std::uint64_t id, std::string_view user, std::vector<PresenceChange>& out);
  /// A connection in `topics` changes user from `from` to `to` ("" anonymous): presence moves.
  void rebind(const std::vector<const std::string*>& topics, std::string_view from, std::string_view to,
              std::vector<PresenceChange>& out);
  /// `id` (a member of `topic`) gets its join/leave events. False when not a member, or when the
  /// topic has `max_watchers` watchers already (0: no limit).
  bool watch(std::string_view topic, std::uint64_t id, std::size_t max_watchers);

  std::size_t member_count(std::string_view topic) const noexcept;
  /// At most `max` members of `topic`.
  std::vector<std::uint64_t> members(std::string_view topic, std::size_t max) const;
  std::size_t user_count(std::string_view topic) const noexcept;
  /// At most `max` users of `topic` with their connection counts, sorted by user.
  std::vector<std::pair<std::string, std::size_t>> users(std::string_view topic, std::size_t max) const;
  std::vector<std::uint64_t> watchers(std::string_view topic) const;
  std::size_t topic_count() const noexcept { return topics_.size(); }

 private:
  struct Entry {
    std::unordered_map<std::uint64_t, bool> members;                                  // -> watches join/leave events
    std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> users;  // -> connections
    std::size_t watchers = 0;
  };
  std::unordered_map<std::string, Entry, StringHash, std::equal_to<>> topics_;
};

}  // namespace fanout::detail

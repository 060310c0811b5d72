// fanout/detail/topic_index.hpp — a Gateway's view of topics as groups: which of its connections are
// in each topic, the users among them (presence: user -> connections there) and who watches the
// topic's join/leave events. Not thread-safe: the Gateway guards it with its lock.
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
  /// connection there. Joining twice changes nothing.
  void join(std::string_view topic, std::uint64_t id, std::string_view user, std::vector<PresenceChange>& out);
  /// `id` left `topic`; a change when it was the user's last connection there.
  void leave(std::string_view topic, std::uint64_t id, std::string_view user, std::vector<PresenceChange>& out);
  /// `id`'s user changes from `from` to `to` ("" anonymous): presence moves in every topic it is in.
  void rebind(std::uint64_t id, std::string_view from, std::string_view to, std::vector<PresenceChange>& out);
  /// `id` (a member of `topic`) gets its join/leave events. False when not a member, or when the
  /// topic has `max_watchers` watchers already (0: no limit).
  bool watch(std::string_view topic, std::uint64_t id, std::size_t max_watchers);

  /// Topics `id` is in (empty when none).
  const std::vector<std::string>& topics_of(std::uint64_t id) const noexcept;
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
  std::unordered_map<std::uint64_t, std::vector<std::string>> of_connection_;
};

}  // namespace fanout::detail

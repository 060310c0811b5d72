// fanout/detail/user_index.hpp — a Gateway's users: each bound user id and its connections. The
// connection -> user direction is the Gateway's own per-connection record, which keeps a pointer to
// the user's name here (stable while the user has connections). Not thread-safe: the Gateway guards
// it with its lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fanout::detail {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class UserIndex {
 public:
  /// Adds connection `id` to `user` (non-empty). Returns the user's name as stored here (valid until
  /// its last connection is removed), or nullptr when `user` has `max_per_user` connections already
  /// (0: no limit); then nothing changed.
  const std::string* add(std::string_view user, std::uint64_t id, std::size_t max_per_user);
  /// Removes connection `id` from `user`; the user goes with its last connection.
  void remove(std::string_view user, std::uint64_t id);
  /// The connections of `user` (empty when none).
  const std::vector<std::uint64_t>& connections(std::string_view user) const noexcept;
  std::size_t user_count() const noexcept { return connections_.size(); }

 private:
  std::unordered_map<std::string, std::vector<std::uint64_t>, StringHash, std::equal_to<>> connections_;
};

}  // namespace fanout::detail

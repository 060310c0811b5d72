// fanout/detail/user_index.hpp — which user each of a Gateway's connections is bound to, and back.
// Not thread-safe: the Gateway guards it with its lock.
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
  enum class Bind { bound, unchanged, too_many };
  /// Binds `id` to `user` (non-empty), replacing its previous user. too_many: `user` already has
  /// `max_per_user` connections (0: no limit); then nothing changed.
  Bind bind(std::uint64_t id, std::string_view user, std::size_t max_per_user);
  /// Removes `id`'s binding; returns the user it had ("" when none).
  std::string unbind(std::uint64_t id);
  /// "" when `id` is not bound.
  std::string_view user_of(std::uint64_t id) const noexcept;
  /// The connections bound to `user` (empty when none).
  const std::vector<std::uint64_t>& connections(std::string_view user) const noexcept;
  std::size_t user_count() const noexcept { return connections_.size(); }
  /// Told when a user gets its first connection (true) or loses its last (false).
  void set_observer(std::function<void(std::string_view user, bool online)> observer) {
    observer_ = std::move(observer);
  }

 private:
  std::unordered_map<std::uint64_t, std::string> user_of_;
  std::unordered_map<std::string, std::vector<std::uint64_t>, StringHash, std::equal_to<>> connections_;
  std::function<void(std::string_view user, bool online)> observer_;
};

}  // namespace fanout::detail

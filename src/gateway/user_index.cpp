#include "fanout/detail/user_index.hpp"

#include <algorithm>

namespace fanout::detail {

UserIndex::Bind UserIndex::bind(std::uint64_t id, std::string_view user, std::size_t max_per_user) {
  if (user_of(id) == user) return Bind::unchanged;
  auto it = connections_.find(user);
  if (max_per_user != 0 && it != connections_.end() && it->second.size() >= max_per_user) return Bind::too_many;
  unbind(id);
  if (it == connections_.end()) {
    it = connections_.emplace(std::string(user), std::vector<std::uint64_t>{}).first;
    if (observer_) observer_(user, true);
  }
  it->second.push_back(id);
  user_of_[id] = std::string(user);
  return Bind::bound;
}

std::string UserIndex::unbind(std::uint64_t id) {
  const auto u = user_of_.find(id);
  if (u == user_of_.end()) return {};
  std::string user = std::move(u->second);
  user_of_.erase(u);
  if (const auto c = connections_.find(user); c != connections_.end()) {
    auto& ids = c->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) {
      connections_.erase(c);
      if (observer_) observer_(user, false);
    }
  }
  return user;
}

std::string_view UserIndex::user_of(std::uint64_t id) const noexcept {
  const auto u = user_of_.find(id);
  return u == user_of_.end() ? std::string_view{} : std::string_view(u->second);
}

const std::vector<std::uint64_t>& UserIndex::connections(std::string_view user) const noexcept {
  static const std::vector<std::uint64_t> none;
  const auto c = connections_.find(user);
  return c == connections_.end() ? none : c->second;
}

}  // namespace fanout::detail

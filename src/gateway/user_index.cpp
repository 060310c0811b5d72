#include "fanout/detail/user_index.hpp"

#include <algorithm>

namespace fanout::detail {

const std::string* UserIndex::add(std::string_view user, std::uint64_t id, std::size_t max_per_user) {
  auto it = connections_.find(user);
  if (it == connections_.end()) {
    it = connections_.emplace(std::string(user), std::vector<std::uint64_t>{}).first;
  } else if (max_per_user != 0 && it->second.size() >= max_per_user) {
    return nullptr;
  }
  it->second.push_back(id);
  return &it->first;  // node-based map: the key stays put until the entry is erased
}

void UserIndex::remove(std::string_view user, std::uint64_t id) {
  const auto c = connections_.find(user);
  if (c == connections_.end()) return;
  auto& ids = c->second;
  ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
  if (ids.empty()) connections_.erase(c);
}

const std::vector<std::uint64_t>& UserIndex::connections(std::string_view user) const noexcept {
  static const std::vector<std::uint64_t> none;
  const auto c = connections_.find(user);
  return c == connections_.end() ? none : c->second;
}

}  // namespace fanout::detail

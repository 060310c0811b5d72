#include "fanout/detail/topic_index.hpp"

#include <algorithm>

namespace fanout::detail {

namespace {
// Presence counts per (topic, user): a change only when a user's count crosses zero.
void add_user(auto& users, std::string_view topic, std::string_view user, std::vector<PresenceChange>& out) {
  if (user.empty()) return;
  auto it = users.find(user);
  if (it == users.end()) {
    users.emplace(std::string(user), 1);
    out.push_back({std::string(topic), std::string(user), true});
  } else {
    ++it->second;
  }
}

void remove_user(auto& users, std::string_view topic, std::string_view user, std::vector<PresenceChange>& out) {
  if (user.empty()) return;
  auto it = users.find(user);
  if (it == users.end()) return;
  if (--it->second == 0) {
    users.erase(it);
    out.push_back({std::string(topic), std::string(user), false});
  }
}
}  // namespace

const std::string* TopicIndex::join(std::string_view topic, std::uint64_t id, std::string_view user,
                                    std::vector<PresenceChange>& out) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) it = topics_.emplace(std::string(topic), Entry{}).first;
  if (!it->second.members.emplace(id, false).second) return nullptr;
  add_user(it->second.users, topic, user, out);
  return &it->first;  // node-based map: the key stays put until the entry is erased
}

bool TopicIndex::leave(std::string_view topic, std::uint64_t id, std::string_view user,
                       std::vector<PresenceChange>& out) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return false;
  auto& e = it->second;
  const auto m = e.members.find(id);
  if (m == e.members.end()) return false;
  if (m->second) --e.watchers;
  e.members.erase(m);
  remove_user(e.users, topic, user, out);
  if (e.members.empty()) topics_.erase(it);  // `topic` may view this key: not used past here
  return true;
}

void TopicIndex::rebind(const std::vector<const std::string*>& topics, std::string_view from, std::string_view to,
                        std::vector<PresenceChange>& out) {
  if (from == to) return;
  for (const std::string* topic : topics) {
    const auto it = topics_.find(*topic);
    if (it == topics_.end()) continue;
    remove_user(it->second.users, *topic, from, out);
    add_user(it->second.users, *topic, to, out);
  }
}

bool TopicIndex::watch(std::string_view topic, std::uint64_t id, std::size_t max_watchers) {
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return false;
  auto& e = it->second;
  const auto m = e.members.find(id);
  if (m == e.members.end()) return false;
  if (m->second) return true;
  if (max_watchers != 0 && e.watchers >= max_watchers) return false;
  m->second = true;
  ++e.watchers;
  return true;
}

std::size_t TopicIndex::member_count(std::string_view topic) const noexcept {
  const auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : it->second.members.size();
}

std::vector<std::uint64_t> TopicIndex::members(std::string_view topic, std::size_t max) const {
  std::vector<std::uint64_t> ids;
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return ids;
  ids.reserve(std::min(max, it->second.members.size()));
  for (const auto& [id, watching] : it->second.members) {
    if (ids.size() >= max) break;
    ids.push_back(id);
  }
  return ids;
}

std::size_t TopicIndex::user_count(std::string_view topic) const noexcept {
  const auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : it->second.users.size();
}

std::vector<std::pair<std::string, std::size_t>> TopicIndex::users(std::string_view topic, std::size_t max) const {
  std::vector<std::pair<std::string, std::size_t>> out;
  const auto it = topics_.find(topic);
  if (it == topics_.end()) return out;
  out.reserve(std::min(max, it->second.users.size()));
  for (const auto& [user, n] : it->second.users) {
    if (out.size() >= max) break;
    out.emplace_back(user, n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::uint64_t> TopicIndex::watchers(std::string_view topic) const {
  std::vector<std::uint64_t> ids;
  const auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.watchers == 0) return ids;
  ids.reserve(it->second.watchers);
  for (const auto& [id, watching] : it->second.members)
    if (watching) ids.push_back(id);
  return ids;
}

}  // namespace fanout::detail

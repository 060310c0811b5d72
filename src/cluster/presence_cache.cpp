#include "fanout/detail/presence_cache.hpp"

#include <utility>

namespace fanout::detail {

PresenceCache::PresenceCache(std::string self, std::size_t max_users) : self_(std::move(self)), max_users_(max_users) {}

void PresenceCache::count_up(std::string_view user) {
  auto it = users_.find(user);
  if (it == users_.end())
    users_.emplace(std::string(user), 1);
  else
    ++it->second;
}

void PresenceCache::count_down(std::string_view user) {
  auto it = users_.find(user);
  if (it != users_.end() && --it->second == 0) users_.erase(it);
}

bool PresenceCache::set_local(std::string_view user, bool online) {
  std::lock_guard lock(mutex_);
  if (online) {
    if (!local_.emplace(user).second) return false;
    count_up(user);
    return true;
  }
  auto it = local_.find(user);
  if (it == local_.end()) return false;
  local_.erase(it);
  count_down(user);
  return true;
}

std::vector<std::string> PresenceCache::local_users() const {
  std::lock_guard lock(mutex_);
  return {local_.begin(), local_.end()};
}

bool PresenceCache::buffer(Delta::Kind kind, std::string_view node, std::string_view user) {
  if (!resyncing_) return false;
  if (buffered_.size() >= max_buffered_)
    overflowed_ = true;
  else
    buffered_.push_back({kind, std::string(node), std::string(user)});
  return true;
}

void PresenceCache::add(std::string_view node, std::string_view user) {
  if (node == self_ || node.empty() || user.empty()) return;
  std::lock_guard lock(mutex_);
  if (!buffer(Delta::add, node, user)) add_locked(node, user);
}

void PresenceCache::remove(std::string_view node, std::string_view user) {
  if (node == self_) return;
  std::lock_guard lock(mutex_);
  if (!buffer(Delta::remove, node, user)) remove_locked(node, user);
}

void PresenceCache::drop_node(std::string_view node) {
  if (node == self_) return;
  std::lock_guard lock(mutex_);
  if (!buffer(Delta::drop, node, {})) drop_node_locked(node);
}

void PresenceCache::add_locked(std::string_view node, std::string_view user) {
  if (remote_pairs_ >= max_users_) {
    auto n = remote_.find(node);
    if (n == remote_.end() || !n->second.contains(user)) ++dropped_;
    return;
  }
  auto n = remote_.find(node);
  if (n == remote_.end()) n = remote_.emplace(std::string(node), Set{}).first;
  if (!n->second.emplace(user).second) return;
  ++remote_pairs_;
  count_up(user);
}

void PresenceCache::remove_locked(std::string_view node, std::string_view user) {
  auto n = remote_.find(node);
  if (n == remote_.end()) return;
  auto u = n->second.find(user);
  if (u == n->second.end()) return;
  count_down(user);
  n->second.erase(u);
  --remote_pairs_;
  if (n->second.empty()) remote_.erase(n);
}

void PresenceCache::drop_node_locked(std::string_view node) {
  auto n = remote_.find(node);
  if (n == remote_.end()) return;
  for (const auto& user : n->second) count_down(user);
  remote_pairs_ -= n->second.size();
  remote_.erase(n);
}

void PresenceCache::begin_resync(std::size_t max_buffered) {
  std::lock_guard lock(mutex_);
  resyncing_ = true;
  overflowed_ = false;
  max_buffered_ = max_buffered;
  buffered_.clear();
}

bool PresenceCache::end_resync(std::unordered_map<std::string, std::vector<std::string>> nodes) {
  std::lock_guard lock(mutex_);
  while (!remote_.empty()) drop_node_locked(std::string(remote_.begin()->first));
  for (auto& [node, users] : nodes) {
    if (node == self_) continue;
    for (const auto& user : users)
      if (!user.empty()) add_locked(node, user);
  }
  replay_locked();
  return !std::exchange(overflowed_, false);
}

void PresenceCache::abort_resync() {
  std::lock_guard lock(mutex_);
  replay_locked();
  overflowed_ = false;
}

void PresenceCache::replay_locked() {
  resyncing_ = false;
  for (const auto& d : buffered_) {
    if (d.kind == Delta::add)
      add_locked(d.node, d.user);
    else if (d.kind == Delta::remove)
      remove_locked(d.node, d.user);
    else
      drop_node_locked(d.node);
  }
  buffered_.clear();
  buffered_.shrink_to_fit();
}

bool PresenceCache::resyncing() const {
  std::lock_guard lock(mutex_);
  return resyncing_;
}

bool PresenceCache::online(std::string_view user) const {
  std::lock_guard lock(mutex_);
  return users_.contains(user);
}

std::size_t PresenceCache::user_count() const {
  std::lock_guard lock(mutex_);
  return users_.size();
}

std::size_t PresenceCache::node_count() const {
  std::lock_guard lock(mutex_);
  return remote_.size() + (local_.empty() ? 0 : 1);
}

std::uint64_t PresenceCache::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

}  // namespace fanout::detail

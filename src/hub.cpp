#include "fanout/hub.hpp"

#include <asio/post.hpp>
#include <bit>

#include "fanout/detail/shard.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/runtime.hpp"
#include "fanout/session.hpp"

namespace fanout {

Hub::Hub(Runtime& runtime) : Hub(runtime, Options{}) {}
Hub::Hub(Runtime& runtime, Options options) : runtime_(runtime), options_(options) {}
Hub::~Hub() = default;

bool Hub::valid_topic(std::string_view name) const noexcept {
  if (name.empty() || name.size() > options_.max_topic_bytes) return false;
  for (unsigned char c : name)
    if (c <= 0x20 || c == 0x7F || c == ',') return false;
  return true;
}

std::shared_ptr<detail::Topic> Hub::find(std::string_view topic) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : it->second;
}

std::size_t Hub::publish(std::string_view topic, std::string_view payload, Opcode op) {
  auto t = find(topic);
  if (!t || t->shard_mask.load(std::memory_order_acquire) == 0) return 0;
  return post(std::move(t), Frame::make(op, payload));
}

std::size_t Hub::publish(std::string_view topic, FrameRef frame) {
  auto t = find(topic);
  if (!t) return 0;
  return post(std::move(t), std::move(frame));
}

std::size_t Hub::post(std::shared_ptr<detail::Topic> topic, FrameRef frame) {
  std::uint64_t mask = topic->shard_mask.load(std::memory_order_acquire);
  if (mask == 0) return 0;
  published_.fetch_add(1, std::memory_order_relaxed);
  // One clock read per publish (not per delivery): writes report how long the frame waited.
  frame->stamp_published(detail::steady_now_ns());
  std::size_t posted = 0;
  while (mask) {
    const auto i = static_cast<std::size_t>(std::countr_zero(mask));
    mask &= mask - 1;
    detail::Shard& shard = runtime_.shard(i);
    // One task per shard carries one reference: the per-recipient work happens in deliver().
    asio::post(shard.context(), [&shard, topic, frame] { shard.deliver(*topic, frame); });
    ++posted;
  }
  return posted;
}

void Hub::set_activity_observer(ActivityObserver observer) {
  std::lock_guard lock(mutex_);
  observer_ = std::move(observer);
}

std::size_t Hub::topic_count() const {
  std::lock_guard lock(mutex_);
  return topics_.size();
}

std::size_t Hub::subscriber_count(std::string_view topic) const {
  auto t = find(topic);
  return t ? static_cast<std::size_t>(t->members.load(std::memory_order_relaxed)) : 0;
}

Hub::SubscribeResult Hub::subscribe(std::string_view name, std::size_t shard, Session* s,
                                    std::shared_ptr<detail::Topic>& out, std::size_t& index) {
  if (!valid_topic(name)) return SubscribeResult::invalid_topic;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      if (topics_.size() >= options_.max_topics) return SubscribeResult::too_many_topics;
      it =
          topics_.emplace(std::string(name), std::make_shared<detail::Topic>(std::string(name), runtime_.shard_count()))
              .first;
    }
    out = it->second;
    // Counted under the lock so unsubscribe() never erases a topic someone is joining.
    if (out->members.fetch_add(1, std::memory_order_relaxed) == 0) {
      active_topics_.fetch_add(1, std::memory_order_relaxed);
      if (observer_) observer_(out->name, true);
    }
  }
  auto& members = out->groups[shard].members;
  index = members.size();
  members.push_back(s);
  if (members.size() == 1) out->shard_mask.fetch_or(std::uint64_t{1} << shard, std::memory_order_release);
  return SubscribeResult::ok;
}

void Hub::unsubscribe(const std::shared_ptr<detail::Topic>& topic, std::size_t shard, Session* s) {
  auto& members = topic->groups[shard].members;
  const std::size_t i = s->group_index(topic.get());
  if (i >= members.size() || members[i] != s) return;
  // Swap-remove: O(1), and the session that moved learns its new place.
  if (i + 1 != members.size()) {
    members[i] = members.back();
    members[i]->set_group_index(topic.get(), i);
  }
  members.pop_back();
  if (members.empty()) {
    members.shrink_to_fit();
    topic->shard_mask.fetch_and(~(std::uint64_t{1} << shard), std::memory_order_release);
  }
  std::lock_guard lock(mutex_);
  if (topic->members.fetch_sub(1, std::memory_order_relaxed) == 1) {
    active_topics_.fetch_sub(1, std::memory_order_relaxed);
    if (observer_) observer_(topic->name, false);
    topics_.erase(topic->name);
  }
}

}  // namespace fanout

#include "fanout/hub.hpp"

#include <asio/post.hpp>
#include <algorithm>
#include <bit>
#include <random>

#include "fanout/detail/envelope.hpp"
#include "fanout/detail/runtime_access.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/runtime.hpp"

namespace fanout {

namespace {
std::uint64_t random_epoch() {
  static std::mutex m;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(m);
  std::uint64_t e = 0;
  while (e == 0) e = rng() >> 11;  // 53 bits: exact in a JSON number (JavaScript clients)
  return e;
}

std::uint32_t key_hash(std::string_view key) noexcept {
  // Nonzero for every key, so 0 can mean "no key" in a Frame.
  return key.empty() ? 0 : static_cast<std::uint32_t>(std::hash<std::string_view>{}(key)) | 1u;
}

Hub::Message to_message(const detail::HistoryEntry& e) { return {e.seq, e.key, std::string(e.frame->payload_view())}; }
}  // namespace

Hub::Hub(Runtime& runtime) : Hub(runtime, Options{}) {}
Hub::Hub(Runtime& runtime, Options options) : runtime_(runtime), options_(std::move(options)) {
  Group::check(options_.group);
}
Hub::~Hub() = default;

bool Hub::valid_topic(std::string_view name) const noexcept {
  if (name.empty() || name.size() > options_.max_topic_bytes) return false;
  for (unsigned char c : name)
    if (c <= 0x20 || c == 0x7F || c == ',') return false;
  return true;
}

detail::HistoryLimits Hub::limits_for(std::string_view topic) const noexcept {
  const History* h = &options_.history;
  for (const auto& [prefix, rule] : options_.history_by_prefix)
    if (topic.starts_with(prefix)) {
      h = &rule;
      break;
    }
  return {h->max_messages, h->max_bytes, h->max_keys};
}

std::shared_ptr<detail::Topic> Hub::find(std::string_view topic) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : it->second;
}

std::shared_ptr<detail::Topic> Hub::find_or_create_locked(std::string_view name) {
  if (auto it = topics_.find(name); it != topics_.end()) return it->second;
  if (!valid_topic(name)) return nullptr;
  if (topics_.size() >= options_.max_topics) {
    // Forget the oldest topic nobody is subscribed to (its history goes with it).
    bool evicted = false;
    for (std::size_t tries = creation_order_.size(); tries > 0 && !evicted; --tries) {
      auto weak = std::move(creation_order_.front());
      creation_order_.pop_front();
      auto t = weak.lock();
      if (!t) continue;
      auto it = topics_.find(t->name);
      if (it == topics_.end() || it->second != t) continue;
      if (t->members.load(std::memory_order_relaxed) > 0) {
        creation_order_.push_back(std::move(weak));
        continue;
      }
      topics_.erase(it);
      evicted = true;
    }
    if (!evicted) return nullptr;
  }
  auto t = std::make_shared<detail::Topic>(std::string(name), runtime_.shard_count(), limits_for(name), options_.group,
                                           random_epoch(), history_bytes_);
  topics_.emplace(t->name, t);
  // Entries of topics forgotten on their last unsubscribe pile up here: compact now and then.
  if (creation_order_.size() > 2 * topics_.size() + 64)
    std::erase_if(creation_order_, [this](const std::weak_ptr<detail::Topic>& w) {
      auto t = w.lock();
      auto it = t ? topics_.find(t->name) : topics_.end();
      return it == topics_.end() || it->second != t;
    });
  creation_order_.push_back(t);
  return t;
}

const char* Hub::to_string(PublishResult::Status s) noexcept {
  switch (s) {
    case PublishResult::Status::accepted: return "accepted";
    case PublishResult::Status::duplicate: return "duplicate";
    case PublishResult::Status::invalid_topic: return "invalid_topic";
    case PublishResult::Status::too_many_topics: return "too_many_topics";
  }
  return "?";
}

void Hub::add_publish_observer(PublishObserver observer) {
  if (observer) publish_observers_.push_back(std::move(observer));
}

Hub::PublishResult Hub::publish(std::string_view topic, std::string_view payload, Opcode op) {
  return publish(topic, payload, PublishOptions{.op = op});
}

Hub::PublishResult Hub::publish(std::string_view name, std::string_view payload, const PublishOptions& o) {
  using Status = PublishResult::Status;
  std::shared_ptr<detail::Topic> topic;
  std::unique_lock<std::mutex> topic_lock;
  for (;;) {  // again only when the record found was erased by its last member leaving meanwhile
    {
      std::lock_guard lock(mutex_);
      topic = find_or_create_locked(name);
    }
    if (!topic) return {valid_topic(name) ? Status::too_many_topics : Status::invalid_topic};
    // Seq assignment, history and the posts happen under the topic's lock, so every shard receives
    // a topic's frames in seq order even when several threads publish to it.
    topic_lock = std::unique_lock(topic->mutex);
    if (!topic->erased) break;
    topic_lock.unlock();  // never wait for the hub's lock while holding a topic's
  }
  detail::Topic& t = *topic;
  if (o.seq != 0 && o.seq <= t.seq) {
    duplicates_.fetch_add(1, std::memory_order_relaxed);
    return {Status::duplicate, t.seq};
  }
  const std::uint64_t seq = o.seq != 0 ? o.seq : t.seq + 1;
  if (t.seq == 0) t.history.set_floor(seq - 1);  // what came before this node saw the topic is unknown
  t.seq = seq;
  FrameRef frame = Frame::make(o.op, payload, {seq, key_hash(o.key)});
  FrameRef envelope = t.envelope_members > 0 ? detail::make_envelope(t.name, seq, o.key, frame) : FrameRef{};

  const auto now = std::chrono::steady_clock::now();
  if (now - t.window_start >= std::chrono::seconds(1)) {
    const double elapsed = std::chrono::duration<double>(now - t.window_start).count();
    t.rate = t.window_start.time_since_epoch().count() == 0 || elapsed > 2 ? 0 : t.window_count / elapsed;
    t.window_start = now;
    t.window_count = 0;
  }
  ++t.window_count;
  ++t.published;
  const auto before = static_cast<std::int64_t>(t.history.bytes());
  t.history.push({seq, frame, envelope, std::string(o.key)}, t.limits.max_messages, t.limits.max_bytes);
  while (history_bytes_->load(std::memory_order_relaxed) + static_cast<std::int64_t>(t.history.bytes()) - before >
             static_cast<std::int64_t>(options_.max_history_bytes) &&
         t.history.pop_oldest()) {
  }
  history_bytes_->fetch_add(static_cast<std::int64_t>(t.history.bytes()) - before, std::memory_order_relaxed);
  if (t.limits.max_keys > 0) {
    auto it = t.latest.find(o.key);
    if (it != t.latest.end())
      it->second = {seq, frame, envelope};
    else if (t.latest.size() < t.limits.max_keys)
      t.latest.emplace(std::string(o.key), detail::Latest{seq, frame, envelope});
  }
  published_.fetch_add(1, std::memory_order_relaxed);
  for (const auto& observe : publish_observers_) observe({t.name, payload, o.key, seq, o.op});
  // One clock read per publish (not per delivery), shared with the rate window: writes report how
  // long the frame waited.
  const std::int64_t stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  frame->stamp_published(stamp);
  if (envelope && envelope.get() != frame.get()) envelope->stamp_published(stamp);

  std::uint64_t mask = t.shard_mask.load(std::memory_order_acquire);
  std::size_t posted = 0;
  while (mask) {
    const auto i = static_cast<std::size_t>(std::countr_zero(mask));
    mask &= mask - 1;
    detail::Shard& shard = detail::RuntimeAccess::shard(runtime_, i);
    // The per-recipient work happens on the shard. One task per shard while frames wait: the
    // frames published before it runs join the same walk (see Group::pending).
    auto& pending = t.groups[i].pending;
    pending.push_back({frame, envelope});
    if (pending.size() == 1) asio::post(shard.context(), [&shard, topic] { shard.deliver_pending(*topic); });
    ++posted;
  }
  return {Status::accepted, seq, posted};
}

std::uint64_t Hub::last_seq(std::string_view name) const {
  auto t = find(name);
  if (!t) return 0;
  std::lock_guard lock(t->mutex);
  return t->seq;
}

std::size_t Hub::topic_count() const {
  std::lock_guard lock(mutex_);
  return topics_.size();
}

std::size_t Hub::subscriber_count(std::string_view topic) const {
  auto t = find(topic);
  return t ? static_cast<std::size_t>(t->members.load(std::memory_order_relaxed)) : 0;
}

namespace {
Hub::TopicInfo info_of(const detail::Topic& t) {
  std::lock_guard lock(t.mutex);
  const bool stale = std::chrono::steady_clock::now() - t.window_start > std::chrono::seconds(2);
  return {t.name,
          static_cast<std::size_t>(std::max<std::int64_t>(0, t.members.load(std::memory_order_relaxed))),
          t.seq,
          t.epoch,
          stale ? 0 : t.rate,
          t.history.size(),
          t.history.bytes()};
}
}  // namespace

std::vector<Hub::TopicInfo> Hub::topics() const {
  std::vector<std::shared_ptr<detail::Topic>> all;
  {
    std::lock_guard lock(mutex_);
    all.reserve(topics_.size());
    for (const auto& [name, t] : topics_) all.push_back(t);
  }
  std::vector<TopicInfo> out;
  out.reserve(all.size());
  for (const auto& t : all) out.push_back(info_of(*t));
  std::sort(out.begin(), out.end(), [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
  return out;
}

std::optional<Hub::TopicInfo> Hub::topic(std::string_view name) const {
  auto t = find(name);
  if (!t) return std::nullopt;
  return info_of(*t);
}

std::optional<Hub::Messages> Hub::history(std::string_view name, std::uint64_t since, std::size_t limit) const {
  auto t = find(name);
  if (!t) return std::nullopt;
  std::lock_guard lock(t->mutex);
  Messages m{t->seq, t->epoch, t->history.first_seq(), since < t->history.floor(), {}};
  for (std::size_t i = t->history.after(since); i < t->history.size() && m.messages.size() < limit; ++i)
    m.messages.push_back(to_message(t->history[i]));
  return m;
}

namespace {
using LatestEntry = std::pair<const std::string, detail::Latest>;
std::vector<LatestEntry*> latest_in_seq_order(detail::Topic& t) {
  std::vector<LatestEntry*> v;
  v.reserve(t.latest.size());
  for (auto& e : t.latest) v.push_back(&e);
  std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->second.seq < b->second.seq; });
  return v;
}
}  // namespace

std::optional<Hub::Messages> Hub::snapshot(std::string_view name) const {
  auto t = find(name);
  if (!t) return std::nullopt;
  std::lock_guard lock(t->mutex);
  Messages m{t->seq, t->epoch, t->history.first_seq(), false, {}};
  for (const auto* e : latest_in_seq_order(*t))
    m.messages.push_back({e->second.seq, e->first, std::string(e->second.frame->payload_view())});
  return m;
}

Hub::SubscribeResult Hub::subscribe(std::string_view name, std::size_t shard, detail::Member* s, const Recovery& r,
                                    std::shared_ptr<detail::Topic>& out, std::size_t& index, Replay& replay) {
  if (!valid_topic(name)) return SubscribeResult::invalid_topic;
  {
    std::lock_guard lock(mutex_);
    out = find_or_create_locked(name);
    if (!out) return SubscribeResult::too_many_topics;
    // Counted under the lock so unsubscribe() never erases a topic someone is joining.
    if (out->members.fetch_add(1, std::memory_order_relaxed) == 0) {
      active_topics_.fetch_add(1, std::memory_order_relaxed);
      if (observer_) observer_(out->name, true);
    }
  }
  detail::Topic& t = *out;
  // Under the topic's lock no publish runs: the replay ends exactly where live frames begin.
  std::lock_guard lock(t.mutex);
  replay.seq = t.seq;
  replay.epoch = t.epoch;
  auto add_snapshot = [&] {
    for (auto* e : latest_in_seq_order(t)) {
      auto& [key, latest] = *e;
      if (r.envelope && !latest.envelope)
        latest.envelope = detail::make_envelope(t.name, latest.seq, key, latest.frame);
      replay.frames.push_back(r.envelope ? latest.envelope : latest.frame);
    }
  };
  if (r.has_since) {
    const bool same_epoch = r.epoch == 0 || r.epoch == t.epoch;
    if (!same_epoch || r.since > t.seq || r.since < t.history.floor()) {
      replay.resync = true;
      replay.first = t.history.first_seq();
      add_snapshot();
    } else {
      for (std::size_t i = t.history.after(r.since); i < t.history.size(); ++i) {
        auto& e = t.history[i];
        if (r.envelope && !e.envelope) {
          const auto before = static_cast<std::int64_t>(t.history.bytes());
          t.history.set_envelope(i, detail::make_envelope(t.name, e.seq, e.key, e.frame));
          history_bytes_->fetch_add(static_cast<std::int64_t>(t.history.bytes()) - before, std::memory_order_relaxed);
        }
        replay.frames.push_back(r.envelope ? e.envelope : e.frame);
      }
    }
  } else if (r.snapshot) {
    add_snapshot();
  }
  if (r.envelope) ++t.envelope_members;
  auto& group = t.groups[shard];
  index = group.add_member(s, t.seq);
  if (group.members.size() == 1) t.shard_mask.fetch_or(std::uint64_t{1} << shard, std::memory_order_release);
  return SubscribeResult::ok;
}

detail::Member* Hub::unsubscribe(const std::shared_ptr<detail::Topic>& topic, std::size_t shard, std::size_t i,
                                 detail::Member* s, bool envelope) {
  auto& group = topic->groups[shard];
  if (i >= group.members.size() || group.members[i] != s) return nullptr;
  // Swap-remove: O(1); the caller tells the member that moved its new place.
  detail::Member* const moved = group.remove_member(i);
  if (group.members.empty()) {
    topic->shard_mask.fetch_and(~(std::uint64_t{1} << shard), std::memory_order_release);
  }
  if (envelope) {
    std::lock_guard lock(topic->mutex);
    --topic->envelope_members;
  }
  std::lock_guard lock(mutex_);
  if (topic->members.fetch_sub(1, std::memory_order_relaxed) == 1) {
    active_topics_.fetch_sub(1, std::memory_order_relaxed);
    if (observer_) observer_(topic->name, false);
    // A topic with messages keeps its history for clients that come back; one without is forgotten.
    // Decided under both locks (hub, then topic): a publisher that found the record before it left
    // the map either numbered its message first (then it stays) or sees `erased` and looks again.
    std::lock_guard topic_lock(topic->mutex);
    if (topic->seq == 0) {
      auto it = topics_.find(topic->name);
      if (it != topics_.end() && it->second == topic) {
        topics_.erase(it);
        topic->erased = true;
      }
    }
  }
  return moved;
}

void Hub::set_activity_observer(ActivityObserver observer) {
  std::lock_guard lock(mutex_);
  observer_ = std::move(observer);
}

}  // namespace fanout

#include "fanout/hub.hpp"

#include <asio/post.hpp>
#include <algorithm>
#include <bit>
#include <random>
#include <stdexcept>

#include "fanout/detail/delta_forms.hpp"
#include "fanout/detail/envelope.hpp"
#include "fanout/detail/pattern_index.hpp"
#include "fanout/detail/runtime_access.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/detail/throttle.hpp"
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
Hub::Hub(Runtime& runtime, Options options)
    : runtime_(runtime), options_(std::move(options)), patterns_(std::make_unique<detail::PatternIndex>()) {
  Group::check(options_.group);
  for (const auto& t : options_.topics)
    if (!declare(t))
      throw std::invalid_argument(valid_topic(t) ? "Hub::Options::topics: more than max_topics"
                                                 : "Hub::Options::topics: invalid topic name '" + t + "'");
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
  return {h->max_messages, h->max_bytes, h->max_keys, h->max_snapshot_bytes};
}

std::shared_ptr<detail::Topic> Hub::find(std::string_view topic) const {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : it->second;
}

// ---- The registry's bookkeeping. Every step is a hash lookup, a counter or an intrusive-list link
// under the hub's lock: a full table costs a refused subscribe no more than an empty one, and never
// holds up a publish (the walk over all topics this replaced took tens of ms per refusal).

void Hub::idle_push_locked(detail::Topic& t) noexcept {
  if (t.idle || t.origin != detail::TopicOrigin::publisher) return;
  t.idle = true;
  t.idle_prev = idle_tail_;
  t.idle_next = nullptr;
  (idle_tail_ ? idle_tail_->idle_next : idle_head_) = &t;
  idle_tail_ = &t;
}

void Hub::idle_unlink_locked(detail::Topic& t) noexcept {
  if (!t.idle) return;
  (t.idle_prev ? t.idle_prev->idle_next : idle_head_) = t.idle_next;
  (t.idle_next ? t.idle_next->idle_prev : idle_tail_) = t.idle_prev;
  t.idle = false;
  t.idle_prev = t.idle_next = nullptr;
}

void Hub::release_client_budget_locked(detail::Topic& t) {
  if (t.origin != detail::TopicOrigin::client) return;
  --client_topics_;
  if (auto it = created_by_connection_.find(t.creator.connection);
      it != created_by_connection_.end() && --it->second == 0)
    created_by_connection_.erase(it);
  if (auto it = created_by_network_.find({t.creator.network_hi, t.creator.network_lo});
      it != created_by_network_.end() && --it->second == 0)
    created_by_network_.erase(it);
}

void Hub::erase_locked(TopicMap::iterator it) {
  detail::Topic& t = *it->second;
  idle_unlink_locked(t);
  release_client_budget_locked(t);
  patterns_->remove_topic(t.name);
  topics_.erase(it);
}

bool Hub::make_room_locked() {
  if (topics_.size() - client_topics_ < options_.max_topics) return true;
  if (!idle_head_) return false;
  // Forget the topic idle the longest (its history goes with it). A publisher that found it a moment
  // ago sees `erased` under the topic's lock and looks again.
  auto it = topics_.find(idle_head_->name);
  std::shared_ptr<detail::Topic> victim = it->second;
  erase_locked(it);
  std::lock_guard topic_lock(victim->mutex);
  victim->erased = true;
  return true;
}

void Hub::adopt_locked(detail::Topic& t, detail::TopicOrigin origin) {
  release_client_budget_locked(t);
  idle_unlink_locked(t);
  t.origin = origin;
  if (origin == detail::TopicOrigin::publisher && t.members.load(std::memory_order_relaxed) == 0) idle_push_locked(t);
}

std::shared_ptr<detail::Topic> Hub::create_locked(std::string_view name, detail::TopicOrigin origin,
                                                  const detail::Requester* requester) {
  auto t = std::make_shared<detail::Topic>(std::string(name), runtime_.shard_count(), limits_for(name), options_.group,
                                           random_epoch(), history_bytes_);
  t->origin = origin;
  if (origin == detail::TopicOrigin::client && requester) {
    t->creator = *requester;
    ++client_topics_;
    ++created_by_connection_[requester->connection];
    ++created_by_network_[{requester->network_hi, requester->network_lo}];
  }
  topics_.emplace(t->name, t);
  patterns_->add_topic(t->name);
  notify_patterns_locked(t);
  return t;
}

void Hub::notify_patterns_locked(const std::shared_ptr<detail::Topic>& t) {
  if (patterns_->size() == 0) return;
  using Matched = std::vector<std::shared_ptr<detail::PatternSubscription>>;
  std::vector<Matched> by_shard;
  patterns_->match(t->name, [&](const std::shared_ptr<detail::PatternSubscription>& s) {
    if (by_shard.empty()) by_shard.resize(runtime_.shard_count());
    by_shard[s->shard].push_back(s);
  });
  for (std::size_t i = 0; i < by_shard.size(); ++i) {
    if (by_shard[i].empty()) continue;
    // The sessions join on their own thread; messages published before they do are replayed from
    // the history (Recovery::from_start), so none is lost in between.
    asio::post(detail::RuntimeAccess::shard(runtime_, i).context(), [matched = std::move(by_shard[i]), t] {
      for (const auto& s : matched)
        if (s->on_topic) s->on_topic(t);
    });
  }
}

std::vector<std::shared_ptr<detail::Topic>> Hub::add_pattern(const std::shared_ptr<detail::PatternSubscription>& s,
                                                             std::size_t limit) {
  std::vector<std::shared_ptr<detail::Topic>> existing;
  std::lock_guard lock(mutex_);
  // Under one lock: a topic is either here already or created later and notified, never neither.
  patterns_->add(s);
  patterns_->topics_matching(s->pattern, [&](std::string_view name) {
    existing.push_back(topics_.find(name)->second);
    return existing.size() <= limit;
  });
  return existing;
}

void Hub::remove_pattern(const detail::PatternSubscription& s) {
  std::lock_guard lock(mutex_);
  patterns_->remove(s);
}

std::shared_ptr<detail::Topic> Hub::find_or_create_locked(std::string_view name) {
  if (auto it = topics_.find(name); it != topics_.end()) {
    detail::Topic& t = *it->second;
    if (t.origin == detail::TopicOrigin::client) {
      // Published to: a publisher's topic from now on, on the publishers' budget.
      if (!make_room_locked()) return nullptr;
      adopt_locked(t, detail::TopicOrigin::publisher);
    }
    return it->second;
  }
  if (!valid_topic(name) || !make_room_locked()) return nullptr;
  auto t = create_locked(name, detail::TopicOrigin::publisher, nullptr);
  idle_push_locked(*t);  // no member yet
  return t;
}

bool Hub::declare(std::string_view name) {
  if (!valid_topic(name)) return false;
  std::lock_guard lock(mutex_);
  if (auto it = topics_.find(name); it != topics_.end()) {
    detail::Topic& t = *it->second;
    if (t.origin == detail::TopicOrigin::client && !make_room_locked()) return false;
    adopt_locked(t, detail::TopicOrigin::declared);
    return true;
  }
  if (!make_room_locked()) return false;
  create_locked(name, detail::TopicOrigin::declared, nullptr);
  return true;
}

std::size_t Hub::client_topic_count() const {
  std::lock_guard lock(mutex_);
  return client_topics_;
}

void Hub::set_topic_directory(TopicDirectory directory) {
  std::lock_guard lock(mutex_);
  directory_ = std::move(directory);
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
  FrameRef delta_form;
  if (t.delta_members > 0) {
    // Against the key's previous message, before put() below replaces it: once for every delta member.
    const auto* base = t.latest.find(o.key);
    delta_form = detail::DeltaForms::make(t.name, seq, o.key, frame, base ? base->frame.get() : nullptr,
                                          options_.delta_max_payload);
    if (delta_form->delta()) deltas_.fetch_add(1, std::memory_order_relaxed);
  }

  const auto now = std::chrono::steady_clock::now();
  if (now - t.window_start >= std::chrono::seconds(1)) {
    const double elapsed = std::chrono::duration<double>(now - t.window_start).count();
    t.rate = t.window_start.time_since_epoch().count() == 0 || elapsed > 2 ? 0 : t.window_count / elapsed;
    t.window_start = now;
    t.window_count = 0;
  }
  ++t.window_count;
  ++t.published;
  const auto held = [&t] { return static_cast<std::int64_t>(t.history.bytes() + t.latest.bytes()); };
  const std::int64_t before = held();
  t.history.push({seq, frame, envelope, std::string(o.key)}, t.limits.max_messages, t.limits.max_bytes);
  t.latest.put(o.key, seq, frame, envelope, t.limits.max_keys, t.limits.max_snapshot_bytes);
  // Over the hub's budget this topic gives back its own oldest: history first (recovery falls back to
  // the snapshot), then the keys updated longest ago.
  const auto over = [&] {
    return history_bytes_->load(std::memory_order_relaxed) + held() - before >
           static_cast<std::int64_t>(options_.max_history_bytes);
  };
  while (over() && t.history.pop_oldest()) {
  }
  while (over() && t.latest.pop_oldest()) {
  }
  history_bytes_->fetch_add(held() - before, std::memory_order_relaxed);
  published_.fetch_add(1, std::memory_order_relaxed);
  for (const auto& observe : publish_observers_) observe({t.name, payload, o.key, seq, o.op});
  // One clock read per publish (not per delivery), shared with the rate window: writes report how
  // long the frame waited.
  const std::int64_t stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  frame->stamp_published(stamp);
  if (envelope && envelope.get() != frame.get()) envelope->stamp_published(stamp);
  if (delta_form && delta_form.get() != frame.get()) {
    delta_form->stamp_published(stamp);
    if (delta_form->delta()) delta_form->delta()->stamp_published(stamp);
  }

  std::uint64_t mask = t.shard_mask.load(std::memory_order_acquire);
  std::size_t posted = 0;
  while (mask) {
    const auto i = static_cast<std::size_t>(std::countr_zero(mask));
    mask &= mask - 1;
    detail::Shard& shard = detail::RuntimeAccess::shard(runtime_, i);
    // The per-recipient work happens on the shard. One task per shard while frames wait: the
    // frames published before it runs join the same walk (see Group::pending).
    auto& pending = t.groups[i].pending;
    pending.push_back({frame, envelope, delta_form});
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
          t.history.bytes(),
          t.latest.size(),
          t.latest.bytes()};
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

std::optional<Hub::Messages> Hub::snapshot(std::string_view name) const {
  auto t = find(name);
  if (!t) return std::nullopt;
  std::lock_guard lock(t->mutex);
  Messages m{t->seq, t->epoch, t->history.first_seq(), false, {}};
  for (const auto& e : t->latest) m.messages.push_back({e.seq, e.key, std::string(e.frame->payload_view())});
  return m;
}

Hub::SubscribeResult Hub::subscribe(std::string_view name, std::size_t shard, detail::Member* s, const Recovery& r,
                                    const detail::Requester* requester, std::shared_ptr<detail::Topic>& out,
                                    std::size_t& index, Replay& replay) {
  using Origin = detail::TopicOrigin;
  if (!valid_topic(name)) return SubscribeResult::invalid_topic;
  // The directory is asked only for a name the hub does not hold, and outside the lock (it has its own).
  bool asked_directory = false, known_elsewhere = false;
  for (;;) {
    std::unique_lock lock(mutex_);
    if (auto it = topics_.find(name); it != topics_.end()) {
      out = it->second;
    } else {
      Origin origin = Origin::publisher;
      if (requester && !known_elsewhere) {
        if (directory_ && !asked_directory) {
          // Set before clients subscribe (set_topic_directory), so it is read here without the lock.
          const TopicDirectory& directory = directory_;
          lock.unlock();
          known_elsewhere = directory(name);
          asked_directory = true;
          continue;
        }
        if (!options_.client_topics.allow) return SubscribeResult::unknown_topic;
        origin = Origin::client;
      }
      if (origin == Origin::client) {
        const auto& c = options_.client_topics;
        const auto count = [](const auto& map, const auto& key) -> std::size_t {
          auto it = map.find(key);
          return it == map.end() ? 0 : it->second;
        };
        if (client_topics_ >= c.max_topics) return SubscribeResult::too_many_topics;
        if (count(created_by_connection_, requester->connection) >= c.max_per_connection)
          return SubscribeResult::connection_limit;
        if (c.max_per_address > 0 &&
            count(created_by_network_, std::pair{requester->network_hi, requester->network_lo}) >= c.max_per_address)
          return SubscribeResult::address_limit;
      } else if (!make_room_locked()) {
        return SubscribeResult::too_many_topics;
      }
      out = create_locked(name, origin, requester);
    }
    // Lanes are this shard's (its thread runs this): one more interval is refused before anything counts.
    if (r.interval_ms != 0 && !detail::find_lane(out->lanes[shard], r.interval_ms) &&
        detail::lane_count(out->lanes[shard]) >= options_.max_intervals_per_topic)
      return SubscribeResult::too_many_intervals;
    count_member_locked(*out);
    break;
  }
  attach(*out, shard, s, r, index, replay);
  return SubscribeResult::ok;
}

void Hub::count_member_locked(detail::Topic& t) {
  // Counted under the lock so unsubscribe() never erases a topic someone is joining.
  if (t.members.fetch_add(1, std::memory_order_relaxed) == 0) {
    idle_unlink_locked(t);
    active_topics_.fetch_add(1, std::memory_order_relaxed);
    if (observer_) observer_(t.name, true);
  }
}

Hub::SubscribeResult Hub::join_matched(const std::shared_ptr<detail::Topic>& topic, std::size_t shard,
                                       detail::Member* s, const Recovery& r, std::size_t& index, Replay& replay) {
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(topic->name);
    if (it == topics_.end() || it->second != topic) return SubscribeResult::unknown_topic;
    if (r.interval_ms != 0 && !detail::find_lane(topic->lanes[shard], r.interval_ms) &&
        detail::lane_count(topic->lanes[shard]) >= options_.max_intervals_per_topic)
      return SubscribeResult::too_many_intervals;  // as subscribe(): the pattern does not bring this one
    count_member_locked(*topic);
  }
  attach(*topic, shard, s, r, index, replay);
  return SubscribeResult::ok;
}

void Hub::attach(detail::Topic& t, std::size_t shard, detail::Member* s, const Recovery& r, std::size_t& index,
                 Replay& replay) {
  // Under the topic's lock no publish runs: the replay ends exactly where live frames begin.
  std::lock_guard lock(t.mutex);
  replay.seq = t.seq;
  replay.epoch = t.epoch;
  auto add_snapshot = [&] {
    for (auto& e : t.latest) {
      if (r.envelope && !e.envelope) {
        const auto before = static_cast<std::int64_t>(t.latest.bytes());
        t.latest.set_envelope(e, detail::make_envelope(t.name, e.seq, e.key, e.frame));
        history_bytes_->fetch_add(static_cast<std::int64_t>(t.latest.bytes()) - before, std::memory_order_relaxed);
      }
      replay.frames.push_back(r.delta      ? detail::DeltaForms::make(t.name, e.seq, e.key, e.frame, nullptr, 0)
                              : r.envelope ? e.envelope
                                           : e.frame);
    }
  };
  if (r.has_since) {
    const bool same_epoch = r.epoch == 0 || r.epoch == t.epoch;
    const std::uint64_t since = r.from_start ? t.history.floor() : r.since;
    if (!same_epoch || since > t.seq || since < t.history.floor()) {
      replay.resync = true;
      replay.first = t.history.first_seq();
      add_snapshot();
    } else {
      for (std::size_t i = t.history.after(since); i < t.history.size(); ++i) {
        auto& e = t.history[i];
        if (r.envelope && !e.envelope) {
          const auto before = static_cast<std::int64_t>(t.history.bytes());
          t.history.set_envelope(i, detail::make_envelope(t.name, e.seq, e.key, e.frame));
          history_bytes_->fetch_add(static_cast<std::int64_t>(t.history.bytes()) - before, std::memory_order_relaxed);
        }
        // A delta member's replay is built for it alone (full messages, its bases): replays are rare.
        replay.frames.push_back(r.delta      ? detail::DeltaForms::make(t.name, e.seq, e.key, e.frame, nullptr, 0)
                                : r.envelope ? e.envelope
                                             : e.frame);
      }
    }
  } else if (r.snapshot) {
    add_snapshot();
  }
  if (r.envelope) ++t.envelope_members;
  if (r.delta) ++t.delta_members;
  auto& group = t.groups[shard];
  auto& lanes = t.lanes[shard];
  const bool first_here = group.members.empty() && !lanes;
  if (r.interval_ms == 0) {
    index = group.add_member(s, t.seq);
  } else {
    detail::Lane* lane = detail::find_lane(lanes, r.interval_ms);
    if (!lane) {
      auto made = std::make_unique<detail::Lane>(t, r.interval_ms, options_.group);
      made->next = std::move(lanes);
      lanes = std::move(made);
      lane = lanes.get();
    }
    index = lane->group.add_member(s, t.seq);
  }
  if (first_here) t.shard_mask.fetch_or(std::uint64_t{1} << shard, std::memory_order_release);
}

detail::Member* Hub::unsubscribe(const std::shared_ptr<detail::Topic>& topic, std::size_t shard, std::size_t i,
                                 detail::Member* s, bool envelope, std::uint32_t interval_ms) {
  auto& group = topic->groups[shard];
  auto& lanes = topic->lanes[shard];
  detail::Lane* const lane = interval_ms != 0 ? detail::find_lane(lanes, interval_ms) : nullptr;
  if (interval_ms != 0 && !lane) return nullptr;
  auto& mine = lane ? lane->group : group;
  if (i >= mine.members.size() || mine.members[i] != s) return nullptr;
  // Swap-remove: O(1); the caller tells the member that moved its new place.
  detail::Member* const moved = mine.remove_member(i);
  if (lane && lane->group.members.empty()) {  // its last member: the lane and what it buffered go
    detail::RuntimeAccess::shard(runtime_, shard).throttle().forget(*lane);
    detail::erase_lane(lanes, lane);
  }
  if (group.members.empty() && !lanes) {
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
    auto it = topics_.find(topic->name);
    if (it != topics_.end() && it->second == topic) {
      if (topic->seq == 0 && topic->origin != detail::TopicOrigin::declared) {
        erase_locked(it);
        topic->erased = true;
      } else {
        idle_push_locked(*topic);  // a publisher's topic only: eviction candidates
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

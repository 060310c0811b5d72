// Wildcard subscriptions on a session (docs/protocol.md, "Patterns"). A pattern is never a member of
// anything: the topics it matches are joined as ordinary subscriptions, the existing ones at subscribe
// and the ones created later when the hub announces them (Hub::add_pattern), so delivery is unchanged.
#include <fmt/format.h>

#include <algorithm>

#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/drop_notices.hpp"  // Session::Custom owns one
#include "fanout/detail/envelope.hpp"
#include "fanout/detail/gateway_hooks.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_app.hpp"    // Session::Custom owns one
#include "fanout/detail/session_auth.hpp"   // Session::Custom owns one
#include "fanout/detail/session_delta.hpp"  // Session::Custom owns one
#include "fanout/detail/session_patterns.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/hub.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"
#include "fanout/topic_pattern.hpp"

namespace fanout {

using detail::ControlError;

void Session::subscribe_pattern(const detail::ControlRequest& req, std::string_view pattern) {
  Hub& hub = owner_.server.hub();
  if (options_.max_patterns == 0) {
    reply_topic_error(ControlError::unsupported, pattern, "wildcard subscriptions are not enabled here");
    return;
  }
  if (!hub.valid_topic(pattern) || !TopicPattern::valid(pattern)) {
    reply_topic_error(ControlError::invalid_topic, pattern,
                      "invalid pattern: '*' stands for whole segments (separated by ':' or '.')");
    return;
  }
  if (!custom_) custom_ = std::make_unique<Custom>();
  if (!custom_->patterns) custom_->patterns = std::make_shared<detail::SessionPatterns>();
  auto& patterns = *custom_->patterns;
  const auto name = detail::json_string(pattern);
  if (const auto* known = patterns.find(pattern)) {
    std::string topics;
    for (const auto* t : known->topics)
      topics += fmt::format(R"({}{}:{{"seq":{},"epoch":{}}})", topics.empty() ? "" : ",", detail::json_string(t->name),
                            hub.last_seq(t->name), t->epoch);
    reply_event(fmt::format(R"({{"event":"subscribe","arg":{},"pattern":true,"topics":{{{}}}}})", name, topics));
    return;
  }
  if (!may_subscribe(pattern, req.token)) return;  // access rules: every topic it could match
  if (patterns.entries.size() >= options_.max_patterns) {
    reply_topic_error(ControlError::too_many_subscriptions, pattern,
                      fmt::format("at most {} patterns per connection", options_.max_patterns));
    return;
  }
  if (req.presence)
    reply_topic_error(ControlError::not_served, pattern, "presence is per topic: subscribe to the topic by name");

  auto sub = std::make_shared<detail::PatternSubscription>(std::string(pattern), owner_.shard.index());
  sub->interval_ms = static_cast<std::uint32_t>(req.interval_ms);  // checked by the caller (interval_allowed)
  sub->delta = req.delta;
  sub->drop_notices = req.drop_notices;
  const detail::PatternSubscription* const raw = sub.get();
  // Emptied by drop_patterns / unsubscribe_pattern on this thread before this session goes.
  sub->on_topic = [this, raw](const std::shared_ptr<detail::Topic>& t) { pattern_matched(*raw, t); };
  patterns.entries.push_back({sub, {}, false});
  ever_subscribed_ = true;
  const auto existing = detail::HubMembers::add_pattern(hub, sub, options_.max_pattern_topics);

  // Join what exists now; the ack (with each topic's seq and epoch) goes before any replayed frame.
  struct Joined {
    const std::shared_ptr<detail::Topic>* topic;
    detail::Replay replay;
  };
  std::vector<Joined> joined;
  bool limited = existing.size() > options_.max_pattern_topics;
  for (std::size_t i = 0; i < existing.size() && i < options_.max_pattern_topics; ++i) {
    const auto& t = existing[i];
    auto& entry = *patterns.find(*raw);  // joins may not move entries, but stay safe
    if (auto* known = find_subscription(t->name); known && known->topic == t) {
      ++known->patterns;
      entry.topics.push_back(t.get());
      detail::Replay now;
      now.seq = hub.last_seq(t->name);
      now.epoch = t->epoch;
      joined.push_back({&t, std::move(now)});
      continue;
    }
    if (subs_.size() >= options_.max_subscriptions) {
      limited = true;
      break;
    }
    detail::Recovery recovery{
        .snapshot = req.snapshot, .envelope = envelope_, .interval_ms = raw->interval_ms, .delta = raw->delta};
    if (const auto* since = req.since_of(t->name)) {
      recovery.has_since = true;
      recovery.since = since->seq;
      recovery.epoch = since->epoch;
    }
    detail::Replay replay;
    if (!join_matched(t, recovery, replay, raw->drop_notices)) continue;  // it left the hub meanwhile
    subs_.back().direct = false;
    entry.topics.push_back(t.get());
    joined.push_back({&t, std::move(replay)});
  }
  std::string topics;
  for (const auto& j : joined)
    topics += fmt::format(R"({}{}:{{"seq":{},"epoch":{}}})", topics.empty() ? "" : ",",
                          detail::json_string((*j.topic)->name), j.replay.seq, j.replay.epoch);
  if (raw->interval_ms != 0)
    reply_event(fmt::format(R"({{"event":"subscribe","arg":{},"pattern":true,"interval_ms":{},"topics":{{{}}}}})", name,
                            raw->interval_ms, topics));
  else
    reply_event(fmt::format(R"({{"event":"subscribe","arg":{},"pattern":true,"topics":{{{}}}}})", name, topics));
  if (limited) report_pattern_limit(pattern, patterns.find(*raw)->limit_told);
  for (const auto& j : joined) {
    if (state_ != State::open) return;
    const detail::Topic& t = **j.topic;
    if (j.replay.resync)
      reply_event(fmt::format(R"({{"event":"resync","arg":{},"from":{},"first":{},"epoch":{}}})",
                              detail::json_string(t.name), j.replay.seq, j.replay.first, j.replay.epoch));
    BackpressureCounters counters;
    if (!j.replay.frames.empty()) replayed_until_ns_ = detail::steady_now_ns();
    for (const auto& f : j.replay.frames) deliver(f, t, counters);
    owner_.shard.add_counters(counters);
  }
}

void Session::pattern_matched(const detail::PatternSubscription& sub, const std::shared_ptr<detail::Topic>& t) {
  if (state_ != State::open || !custom_ || !custom_->patterns) return;
  auto* entry = custom_->patterns->find(sub);
  if (!entry) return;
  if (auto* known = find_subscription(t->name); known && known->topic == t) {
    if (std::find(entry->topics.begin(), entry->topics.end(), t.get()) == entry->topics.end()) {
      ++known->patterns;
      entry->topics.push_back(t.get());
    }
    return;
  }
  if (entry->topics.size() >= options_.max_pattern_topics || subs_.size() >= options_.max_subscriptions) {
    report_pattern_limit(sub.pattern, entry->limit_told);
    return;
  }
  // A new topic: whatever was published to it before this join is in its history.
  detail::Recovery recovery{
      .has_since = true, .envelope = envelope_, .interval_ms = sub.interval_ms, .from_start = true, .delta = sub.delta};
  detail::Replay replay;
  if (!join_matched(t, recovery, replay, sub.drop_notices)) return;
  subs_.back().direct = false;
  entry->topics.push_back(t.get());
  reply_event(fmt::format(R"({{"event":"subscribe","arg":{},"pattern":{},"seq":{},"epoch":{}}})",
                          detail::json_string(t->name), detail::json_string(sub.pattern), replay.seq, replay.epoch));
  BackpressureCounters counters;
  if (!replay.frames.empty()) replayed_until_ns_ = detail::steady_now_ns();
  for (const auto& f : replay.frames) deliver(f, *t, counters);
  owner_.shard.add_counters(counters);
}

bool Session::join_matched(const std::shared_ptr<detail::Topic>& topic, const detail::Recovery& recovery,
                           detail::Replay& replay, bool drop_notices) {
  if (state_ != State::open) return false;
  std::size_t index = 0;
  if (detail::HubMembers::join_matched(owner_.server.hub(), topic, owner_.shard.index(), this, recovery, index,
                                       replay) != detail::SubscribeResult::ok)
    return false;
  // As Session::join does for a topic by name: the pattern's delta and drop-notice wishes, per topic.
  if (recovery.delta) {
    if (!custom_->delta) custom_->delta = std::make_unique<detail::SessionDelta>(options_.max_delta_keys);
    custom_->delta->add_topic(topic->id);
  }
  if (drop_notices) {
    if (!custom_->drops) custom_->drops = std::make_unique<detail::DropNotices>();
    custom_->drops->add_topic(topic->id);
  }
  subs_.push_back({topic, static_cast<std::uint32_t>(index), recovery.interval_ms, 1, false});
  owner_.subscriptions.fetch_add(1, std::memory_order_relaxed);
  if (owner_.gateway) owner_.gateway->joined(*this, topic->name);
  return true;
}

void Session::report_pattern_limit(std::string_view pattern, bool& told) {
  if (told) return;
  told = true;
  reply_topic_error(ControlError::too_many_subscriptions, pattern,
                    fmt::format("the pattern matches more topics than this connection may join (max_pattern_topics "
                                "{}, max_subscriptions {}): the others are not delivered",
                                options_.max_pattern_topics, options_.max_subscriptions));
}

bool Session::unsubscribe_pattern(std::string_view pattern) {
  if (!custom_ || !custom_->patterns) return false;
  auto& entries = custom_->patterns->entries;
  auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.sub->pattern == pattern; });
  if (it == entries.end()) return false;
  detail::SessionPatterns::Entry entry = std::move(*it);
  entries.erase(it);
  detail::HubMembers::remove_pattern(owner_.server.hub(), *entry.sub);
  entry.sub->on_topic = nullptr;
  // Leave what only this pattern kept; a topic also subscribed by name, or by another pattern, stays.
  for (const auto* t : entry.topics)
    for (std::size_t k = 0; k < subs_.size(); ++k) {
      if (subs_[k].topic.get() != t) continue;
      if (--subs_[k].patterns == 0 && !subs_[k].direct) leave(k);
      break;
    }
  return true;
}

void Session::forget_pattern_topic(const detail::Topic* topic) noexcept {
  for (auto& e : custom_->patterns->entries) std::erase(e.topics, topic);
}

void Session::drop_patterns() {
  if (!custom_ || !custom_->patterns) return;
  for (auto& e : custom_->patterns->entries) {
    detail::HubMembers::remove_pattern(owner_.server.hub(), *e.sub);
    e.sub->on_topic = nullptr;
  }
  custom_->patterns.reset();
}

}  // namespace fanout

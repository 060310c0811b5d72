// The control protocol on a session: subscribe / unsubscribe / ping requests (parsed by
// detail/control_protocol.hpp), their acks and errors, and joining topics.
#include <algorithm>

#include <fmt/format.h>

#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/hub.hpp"
#include "fanout/session.hpp"

namespace fanout {

void Session::on_control(std::string_view text) {
  using detail::ControlError;
  auto parsed = detail::parse_control(text);
  // Charged before any work or reply: one per topic named (a long list is many requests), at least one.
  if (!spend_control(parsed.ok ? std::max<std::size_t>(1, parsed.request.args.size()) : 1)) return;
  if (!parsed.ok) {
    reply_error(static_cast<int>(parsed.error), parsed.message);
    return;
  }
  switch (parsed.request.op) {
    case detail::ControlRequest::Op::ping: reply_event(R"({"event":"pong"})"); return;
    case detail::ControlRequest::Op::subscribe:
      for (const auto& t : parsed.request.args) {
        if (state_ != State::open) return;  // a reply past the queue's reserve closed it
        if (group_index_known(t)) {
          reply_event(
              fmt::format(R"({{"event":"subscribe","arg":{},"seq":{}}})", detail::json_string(t), hub_.last_seq(t)));
          continue;
        }
        if (subs_.size() >= options_.max_subscriptions) {
          reply_error(static_cast<int>(ControlError::too_many_subscriptions),
                      fmt::format("at most {} subscriptions per connection", options_.max_subscriptions));
          continue;
        }
        detail::Recovery recovery{.snapshot = parsed.request.snapshot, .envelope = envelope_};
        if (const auto* since = parsed.request.since_of(t)) {
          recovery.has_since = true;
          recovery.since = since->seq;
          recovery.epoch = since->epoch;
        }
        detail::Replay replay;
        if (!join(t, recovery, replay)) continue;
        const auto name = detail::json_string(t);
        reply_event(
            fmt::format(R"({{"event":"subscribe","arg":{},"seq":{},"epoch":{}}})", name, replay.seq, replay.epoch));
        if (replay.resync)
          reply_event(fmt::format(R"({{"event":"resync","arg":{},"from":{},"first":{},"epoch":{}}})", name, replay.seq,
                                  replay.first, replay.epoch));
        // Under the policy like live frames: a replay cannot take the queue past its limits.
        BackpressureCounters counters;
        const detail::Topic& joined = *subs_.back().topic;
        if (!replay.frames.empty()) replayed_until_ns_ = detail::steady_now_ns();
        for (const auto& f : replay.frames) deliver(f, joined, counters);
        shard_.add_counters(counters);
      }
      return;
    case detail::ControlRequest::Op::unsubscribe:
      for (const auto& t : parsed.request.args) {
        if (state_ != State::open) return;
        if (unsubscribe(t))
          reply_event(fmt::format(R"({{"event":"unsubscribe","arg":{}}})", detail::json_string(t)));
        else
          reply_error(static_cast<int>(ControlError::not_subscribed), fmt::format("not subscribed to {}", t));
      }
      return;
  }
}

bool Session::group_index_known(std::string_view topic) const noexcept {
  for (const auto& s : subs_)
    if (s.topic->name == topic) return true;
  return false;
}

bool Session::subscribe(std::string_view topic) {
  if (group_index_known(topic)) return state_ == State::open;
  detail::Replay replay;
  return join(topic, detail::Recovery{.envelope = envelope_}, replay);
}

bool Session::join(std::string_view topic, const detail::Recovery& recovery, detail::Replay& replay) {
  if (state_ != State::open) return false;
  if (subs_.size() >= options_.max_subscriptions) return false;
  std::shared_ptr<detail::Topic> t;
  std::size_t index = 0;
  switch (detail::HubMembers::subscribe(hub_, topic, shard_.index(), this, recovery, t, index, replay)) {
    case detail::SubscribeResult::ok: break;
    case detail::SubscribeResult::invalid_topic:
      reply_error(static_cast<int>(detail::ControlError::invalid_topic),
                  fmt::format("invalid topic name {}", detail::json_string(topic)));
      return false;
    case detail::SubscribeResult::too_many_topics:
      reply_error(static_cast<int>(detail::ControlError::too_many_topics), "the server has too many topics");
      return false;
  }
  subs_.push_back({std::move(t), index});
  ever_subscribed_ = true;
  owner_.subscriptions.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Session::unsubscribe(std::string_view topic) {
  for (std::size_t i = 0; i < subs_.size(); ++i) {
    if (subs_[i].topic->name != topic) continue;
    leave(i);
    return true;
  }
  return false;
}

void Session::reply_event(std::string_view json) { send(json); }

void Session::reply_error(int code, std::string_view msg) {
  send(fmt::format(R"({{"event":"error","code":{},"msg":{}}})", code, detail::json_string(msg)));
}

}  // namespace fanout

// The control protocol on a session: subscribe / unsubscribe / ping requests (parsed by
// detail/control_protocol.hpp), their acks and errors, and joining topics.
#include <algorithm>

#include <fmt/format.h>

#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/envelope.hpp"
#include "fanout/detail/gateway_hooks.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/hub.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

namespace fanout {

void Session::on_control(std::string_view text) {
  auto parsed = detail::parse_control(text);
  on_control(parsed);
}

void Session::on_control(detail::ControlParse& parsed) {
  using detail::ControlError;
  // Charged before any work or reply: one per topic named (a long list is many requests), at least one.
  if (!spend_control(parsed.ok ? std::max<std::size_t>(1, parsed.request.args.size()) : 1)) return;
  if (!parsed.ok) {
    if (parsed.control && parsed.request.op == detail::ControlRequest::Op::rpc)
      reply_rpc_error(parsed.request.id, static_cast<int>(parsed.error), parsed.message);
    else
      reply_error(static_cast<int>(parsed.error), parsed.message);
    return;
  }
  if (on_auth_control(parsed.request)) return;  // auth, refresh, and anything before a required auth
  switch (parsed.request.op) {
    case detail::ControlRequest::Op::auth:
    case detail::ControlRequest::Op::refresh: return;  // handled above
    case detail::ControlRequest::Op::ping: reply_event(R"({"event":"pong"})"); return;
    case detail::ControlRequest::Op::rpc: on_rpc(parsed.request); return;
    case detail::ControlRequest::Op::subscribe:
      if (!interval_allowed(parsed.request.interval_ms)) return;
      for (const auto& t : parsed.request.args) {
        if (state_ != State::open) return;  // a reply past the queue's reserve closed it
        if (group_index_known(t)) {
          reply_event(fmt::format(R"({{"event":"subscribe","arg":{},"seq":{}}})", detail::json_string(t),
                                  owner_.server.hub().last_seq(t)));
          continue;
        }
        if (!may_subscribe(t, parsed.request.token)) continue;  // access rules (auth.hpp)
        if (subs_.size() >= options_.max_subscriptions) {
          reply_error(static_cast<int>(ControlError::too_many_subscriptions),
                      fmt::format("at most {} subscriptions per connection", options_.max_subscriptions));
          continue;
        }
        detail::Recovery recovery{.snapshot = parsed.request.snapshot,
                                  .envelope = envelope_,
                                  .interval_ms = static_cast<std::uint32_t>(parsed.request.interval_ms)};
        if (const auto* since = parsed.request.since_of(t)) {
          recovery.has_since = true;
          recovery.since = since->seq;
          recovery.epoch = since->epoch;
        }
        detail::Replay replay;
        const detail::Requester requester = requester_of(id_, remote_);
        if (!join(t, recovery, replay, &requester)) continue;
        const auto name = detail::json_string(t);
        // A throttled client's ack says so: its seq jumps are conflation, not drops (docs/protocol.md).
        if (recovery.interval_ms != 0)
          reply_event(fmt::format(R"({{"event":"subscribe","arg":{},"seq":{},"epoch":{},"interval_ms":{}}})", name,
                                  replay.seq, replay.epoch, recovery.interval_ms));
        else
          reply_event(
              fmt::format(R"({{"event":"subscribe","arg":{},"seq":{},"epoch":{}}})", name, replay.seq, replay.epoch));
        if (parsed.request.presence) watch_presence(t);
        if (replay.resync)
          reply_event(fmt::format(R"({{"event":"resync","arg":{},"from":{},"first":{},"epoch":{}}})", name, replay.seq,
                                  replay.first, replay.epoch));
        // Under the policy like live frames: a replay cannot take the queue past its limits.
        BackpressureCounters counters;
        const detail::Topic& joined = *subs_.back().topic;
        if (!replay.frames.empty()) replayed_until_ns_ = detail::steady_now_ns();
        for (const auto& f : replay.frames) deliver(f, joined, counters);
        owner_.shard.add_counters(counters);
      }
      return;
    case detail::ControlRequest::Op::presence:
      answer_presence(parsed.request.args.front(), parsed.request.token);
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

// Presence (docs/protocol.md, "Presence"): served by an attached Gateway, which tracks who is in
// each topic. The access rules that let a client subscribe to a topic let it see who is there.
void Session::answer_presence(std::string_view topic, std::string_view token) {
  if (!owner_.gateway) {
    reply_error(static_cast<int>(detail::ControlError::not_served), "presence is not served here (no gateway)");
    return;
  }
  if (!may_subscribe(topic, token)) return;
  reply_event(owner_.gateway->presence(topic));
}

void Session::watch_presence(std::string_view topic) {
  if (!owner_.gateway) {
    reply_topic_error(detail::ControlError::not_served, topic, "presence is not served here (no gateway)");
    return;
  }
  std::string error;
  if (!owner_.gateway->watch(*this, topic, error))
    reply_topic_error(detail::ControlError::too_many_subscriptions, topic, error);
}

// Throttling's bounds (Session::Options::min_interval, max_interval): checked once per subscribe.
bool Session::interval_allowed(std::uint64_t interval_ms) {
  if (interval_ms == 0) return true;
  const auto min = static_cast<std::uint64_t>(options_.min_interval.count());
  const auto max = static_cast<std::uint64_t>(options_.max_interval.count());
  if (max == 0) {
    reply_error(static_cast<int>(detail::ControlError::bad_interval), "throttling (interval_ms) is not served here");
    return false;
  }
  if (interval_ms < min || interval_ms > max) {
    reply_error(static_cast<int>(detail::ControlError::bad_interval),
                fmt::format("interval_ms must be between {} and {}", min, max));
    return false;
  }
  return true;
}

bool Session::group_index_known(std::string_view topic) const noexcept {
  for (const auto& s : subs_)
    if (s.topic->name == topic) return true;
  return false;
}

bool Session::subscribe(std::string_view topic) {
  if (group_index_known(topic)) return state_ == State::open;
  detail::Replay replay;
  return join(topic, detail::Recovery{.envelope = envelope_}, replay, nullptr);
}

bool Session::join(std::string_view topic, const detail::Recovery& recovery, detail::Replay& replay,
                   const detail::Requester* requester) {
  using detail::ControlError;
  if (state_ != State::open) return false;
  if (subs_.size() >= options_.max_subscriptions) return false;
  std::shared_ptr<detail::Topic> t;
  std::size_t index = 0;
  const auto& limits = owner_.server.hub().options().client_topics;
  switch (detail::HubMembers::subscribe(owner_.server.hub(), topic, owner_.shard.index(), this, recovery, requester, t,
                                        index, replay)) {
    case detail::SubscribeResult::ok: break;
    case detail::SubscribeResult::invalid_topic:
      reply_error(static_cast<int>(ControlError::invalid_topic),
                  fmt::format("invalid topic name {}", detail::json_string(topic)));
      return false;
    case detail::SubscribeResult::unknown_topic:
      reply_topic_error(ControlError::unknown_topic, topic, "unknown topic");
      return false;
    case detail::SubscribeResult::too_many_topics:
      reply_topic_error(ControlError::too_many_topics, topic, "the server has too many topics");
      return false;
    case detail::SubscribeResult::connection_limit:
      reply_topic_error(ControlError::too_many_topics, topic,
                        fmt::format("at most {} topics created per connection", limits.max_per_connection));
      return false;
    case detail::SubscribeResult::too_many_intervals:
      reply_topic_error(ControlError::bad_interval, topic,
                        fmt::format("at most {} distinct interval_ms per topic",
                                    owner_.server.hub().options().max_intervals_per_topic));
      return false;
    case detail::SubscribeResult::address_limit:
      reply_topic_error(ControlError::too_many_topics, topic,
                        fmt::format("at most {} topics created per client address", limits.max_per_address));
      return false;
  }
  subs_.push_back({std::move(t), static_cast<std::uint32_t>(index), recovery.interval_ms});
  ever_subscribed_ = true;
  owner_.subscriptions.fetch_add(1, std::memory_order_relaxed);
  if (owner_.gateway) owner_.gateway->joined(*this, topic);
  return true;
}

bool Session::deliver_live(std::string_view topic, const FrameRef& verbatim, FrameRef& envelope) {
  for (const auto& sub : subs_) {
    if (sub.topic->name != topic) continue;
    // Outside the topic's sequence: an envelope client sees seq 0 (docs/gateway.md).
    if (envelope_ && !envelope) envelope = detail::make_envelope(topic, 0, {}, verbatim);
    BackpressureCounters counters;
    deliver(envelope_ ? envelope : verbatim, *sub.topic, counters);
    owner_.shard.add_counters(counters);
    return true;
  }
  return false;
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

// The refusals of a topic name carry it, so a client that subscribed to several knows which failed.
void Session::reply_topic_error(detail::ControlError code, std::string_view topic, std::string_view msg) {
  send(fmt::format(R"({{"event":"error","code":{},"arg":{},"msg":{}}})", static_cast<int>(code),
                   detail::json_string(topic), detail::json_string(msg)));
}

// What the hub counts a client's topics by: this connection, and its IPv4 address or IPv6 /64.
detail::Requester Session::requester_of(std::uint64_t id, const asio::ip::tcp::endpoint& remote) noexcept {
  detail::Requester r{.connection = id};
  const asio::ip::address a = remote.address();
  if (a.is_v4() || (a.is_v6() && a.to_v6().is_v4_mapped())) {
    const auto v4 = a.is_v4() ? a.to_v4() : asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    r.network_lo = (std::uint64_t{1} << 32) | v4.to_uint();  // an IPv6 /64 leaves network_lo 0
  } else if (a.is_v6()) {
    const auto b = a.to_v6().to_bytes();
    for (int i = 0; i < 8; ++i) r.network_hi = (r.network_hi << 8) | b[static_cast<std::size_t>(i)];
  }
  return r;
}

void Session::reply_error(int code, std::string_view msg) {
  send(fmt::format(R"({{"event":"error","code":{},"msg":{}}})", code, detail::json_string(msg)));
}

}  // namespace fanout

// fanout/detail/control_protocol.hpp — the client's JSON control messages (docs/protocol.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fanout::detail {

/// Error codes in {"event":"error","code":N,...}; documented in docs/protocol.md.
enum class ControlError : int {
  bad_json = 4000,
  unknown_op = 4001,
  bad_args = 4002,
  invalid_topic = 4003,
  too_many_subscriptions = 4004,
  too_many_topics = 4005,
  not_subscribed = 4006,
  unsupported = 4007,
  // Identity and access control (auth.hpp), numbered after HTTP's 401 and 403.
  unauthorized = 4401,   // a token was needed, or the one given was refused
  forbidden = 4403,      // the access rules deny this topic to this connection
  unknown_topic = 4008,  // subscribe to a topic the server does not have (clients may not create topics)
  not_served = 4501,     // an op this server does not serve (presence without a Gateway)
};

/// Where a client left a topic: its last seq, and the topic's epoch when it knew it.
struct Since {
  std::string topic;
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;  // 0: not given
};

struct ControlRequest {
  enum class Op { subscribe, unsubscribe, ping, auth, refresh, presence };
  Op op = Op::ping;
  std::vector<std::string> args;
  std::vector<Since> since;  // subscribe: {"since":{"t":120}} or {"since":{"t":{"seq":120,"epoch":E}}}
  bool snapshot = false;     // subscribe: {"snapshot":true} sends the latest value per key first
  std::string token;         // auth, refresh: the JWT; subscribe: a per-topic subscribe token (optional)
  bool presence = false;     // subscribe: {"presence":true} also sends the topic's join/leave events

  const Since* since_of(std::string_view topic) const noexcept {
    for (const auto& s : since)
      if (s.topic == topic) return &s;
    return nullptr;
  }
};

struct ControlParse {
  bool ok = false;
  ControlRequest request;
  ControlError error = ControlError::bad_json;
  std::string message;
};

/// Parses one text message from a client (simdjson on-demand; runs once per client message).
ControlParse parse_control(std::string_view text);

}  // namespace fanout::detail

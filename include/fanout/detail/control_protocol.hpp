// fanout/detail/control_protocol.hpp — the client's JSON control messages (docs/protocol.md).
#pragma once

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
};

struct ControlRequest {
  enum class Op { subscribe, unsubscribe, ping };
  Op op = Op::ping;
  std::vector<std::string> args;
};

struct ControlParse {
  bool ok = false;
  ControlRequest request;
  ControlError error = ControlError::bad_json;
  std::string message;
};

/// Parses one text message from a client (simdjson on-demand; runs once per client message).
ControlParse parse_control(std::string_view text);

/// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);

}  // namespace fanout::detail

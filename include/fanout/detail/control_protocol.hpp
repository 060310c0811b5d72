// fanout/detail/control_protocol.hpp — the client's JSON control messages (docs/protocol.md).
#pragma once

#include <cstddef>
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
  // The application's callbacks (Server::Callbacks; docs/protocol.md, "Messages and rpc"), after HTTP's 429/50x.
  too_many_rpcs = 4429,  // more rpcs waiting for their answers than Session::Options::max_pending_rpcs
  app_failed = 4500,     // the application threw, or answered an rpc with text that is not JSON
  not_served = 4501,     // an op this server does not serve (rpc without on_rpc, presence without a Gateway)
  rpc_timeout = 4504,    // no answer within Session::Options::rpc_timeout
  // Throttling ("interval_ms"), after HTTP's 422: an interval outside Session::Options::min_interval..
  // max_interval, or one distinct interval too many for a topic (Hub::Options::max_intervals_per_topic).
  bad_interval = 4422,
};

/// The longest rpc "id" (as JSON text) a session keeps while the rpc waits for its answer.
inline constexpr std::size_t k_max_rpc_id_bytes = 256;

/// Where a client left a topic: its last seq, and the topic's epoch when it knew it.
struct Since {
  std::string topic;
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;  // 0: not given
};

struct ControlRequest {
  enum class Op { subscribe, unsubscribe, ping, auth, refresh, presence, rpc };
  Op op = Op::ping;
  std::vector<std::string> args;
  std::vector<Since> since;       // subscribe: {"since":{"t":120}} or {"since":{"t":{"seq":120,"epoch":E}}}
  bool snapshot = false;          // subscribe: {"snapshot":true} sends the latest value per key first
  std::string token;              // auth, refresh: the JWT; subscribe: a per-topic subscribe token (optional)
  bool presence = false;          // subscribe: {"presence":true} also sends the topic's join/leave events
  std::uint64_t interval_ms = 0;  // subscribe: {"interval_ms":N} throttles live messages; 0: not throttled
  std::string id;                 // rpc: "id" as JSON text (a number or a string)
  std::string data;               // rpc: "data" as the client wrote it ("null" when absent)
  std::string method;             // rpc: "method" when a string

  const Since* since_of(std::string_view topic) const noexcept {
    for (const auto& s : since)
      if (s.topic == topic) return &s;
    return nullptr;
  }
};

struct ControlParse {
  bool ok = false;
  // A control op: a JSON object whose "op" is one of the protocol's (control_op_of), valid or not.
  // Anything else (not JSON, not an object, no "op", another op) is an application message when
  // Server::Callbacks::on_message is set; `error` then says why it is not a control op.
  bool control = false;
  ControlRequest request;
  ControlError error = ControlError::bad_json;
  std::string message;
};

/// Parses one text message from a client (runs once per client text message).
ControlParse parse_control(std::string_view text);
/// The protocol's op named `op`; false when it names none (the message is then the application's).
bool control_op_of(std::string_view op, ControlRequest::Op& out) noexcept;

}  // namespace fanout::detail

// fanout/router.hpp — turns an upstream message into (topic, optional key, optional seq).
//
// The built-in rule reads JSON fields by dotted path (simdjson, once per upstream message, never per
// delivery): a topic template such as "{arg.channel}:{arg.instId}", an optional key path (e.g.
// "data.0.instId") and seq path (e.g. "data.0.seqId"). Messages that are the exchange talking to us
// (acks, errors, pongs) are recognised and not forwarded. A callback can replace the rule.
//
//   fanout::Router router({.topic_template = "{arg.channel}:{arg.instId}"});
//   fanout::Routed r;
//   if (router.route(msg, r) == fanout::Router::Result::routed) hub.publish(r.topic, msg);
//
// Thread safety: route() is const-safe to call from one thread at a time per Router (it owns a
// parser); counters() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/export.hpp"

namespace fanout {

struct FANOUT_API Routed {
  std::string topic;
  std::optional<std::string> key;    // e.g. the instrument id; conflation and snapshots use it
  std::optional<std::uint64_t> seq;  // the upstream's sequence number, when it has one
};

class FANOUT_API Router {
 public:
  struct Options {
    /// Topic built from JSON fields: "{a.b}" is the field at path a.b; "{data.0.x}" indexes arrays.
    /// Strings are inserted unquoted; integers exactly, other numbers in shortest form (1.50 -> 1.5);
    /// booleans as true/false. Literal text is kept; there is no escape for '{' or '}'. A null field
    /// counts as missing.
    std::string topic_template = "{arg.channel}:{arg.instId}";
    /// Topic for JSON messages the template does not match (a field missing). Empty: not forwarded.
    std::string default_topic{};
    std::string key_path{};  // optional; empty: no key
    std::string seq_path{};  // optional; empty: no seq (a number or a numeric string)
    /// A message that has any of these top-level fields is the exchange talking to us (subscribe
    /// acks, errors, login results): counted as control, not forwarded.
    std::vector<std::string> control_fields = {"event", "op"};
    /// Whole messages that are heartbeats (compared exactly, e.g. "pong"): not forwarded.
    std::vector<std::string> heartbeat_texts = {"pong"};
    /// Non-JSON messages go to this topic when set, else to default_topic when that is set;
    /// otherwise they are dropped (Result::invalid). Every one counts in Counters::non_json.
    std::string non_json_topic{};
    /// Called with each non-JSON message (before it is routed or dropped), on route()'s thread:
    /// e.g. a rate-limited log line. The view is valid during the call only.
    std::function<void(std::string_view message)> on_non_json{};
  };

  enum class Result { routed, control, heartbeat, unmatched, invalid };

  /// A user rule: return the route, or nullopt to drop the message (counted as unmatched). It sees
  /// every message, heartbeats and acks included.
  using Callback = std::function<std::optional<Routed>(std::string_view message)>;

  Router();
  explicit Router(Options options);
  explicit Router(Callback callback);
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  /// Classifies `message`; on `routed`, `out` holds the route (otherwise it is unspecified).
  Result route(std::string_view message, Routed& out);

  struct Counters {
    std::uint64_t routed = 0, control = 0, heartbeat = 0, unmatched = 0, invalid = 0;
    std::uint64_t non_json = 0;  // not JSON: routed (non_json_topic, default_topic) or invalid
  };
  Counters counters() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanout

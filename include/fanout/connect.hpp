// fanout/connect.hpp — the application's say on a connection before its upgrade is answered
// (Server::Callbacks::on_connect): who it is (from a cookie, a header, a token, a backend), whether
// it may connect, and the topics it joins at once.
//
//   .on_connect = [](const fanout::ConnectRequest& r, fanout::ConnectDecide decide) {
//     if (r.query_param("room")) decide(fanout::ConnectDecision::accepted("", {"room:" + *r.query_param("room")}));
//     else decide(fanout::ConnectDecision::refused(400, "which room?"));
//   }
//
// `decide` may be called later and from any thread (e.g. when a backend answered), once; until then
// the upgrade waits. Not called within Server::Options::handshake_timeout (from accept), the client
// gets 504 and the connection closes; called twice, the second call is ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fanout/export.hpp"
#include "fanout/identity.hpp"

namespace fanout {

/// The upgrade request as the client sent it (an owned copy: it may outlive the callback).
struct FANOUT_API ConnectRequest {
  std::uint64_t session_id = 0;  // Session::id() the connection will have (Gateway::client_id names it)
  std::string client_id;         // with a Gateway attached: the connection's id; else empty
  std::string remote_address;    // the client's IP (a trusted proxy's X-Forwarded-For / PROXY applied)
  std::uint16_t remote_port = 0;
  std::string path;                                          // "/ws"
  std::string query;                                         // raw, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // in order; names as sent
  std::optional<Identity> identity;                          // when a token was verified (Server::Options::auth)

  /// First value of a header (case-insensitive name).
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  /// A cookie of the Cookie header(s), by exact name.
  std::optional<std::string> cookie(std::string_view name) const;
  /// A query parameter, URL-decoded.
  std::optional<std::string> query_param(std::string_view key) const;
};

struct FANOUT_API ConnectDecision {
  bool accept = true;
  int http_status = 403;            // refused: the HTTP answer to the upgrade (4xx/5xx)
  std::string reason;               // refused: its body (and the log line); keep it short, clients see it
  std::string user_id;              // accepted: the user id bound to the connection ("" none; Gateway::bind_user)
  std::vector<std::string> topics;  // accepted: joined at once on the application's authority (Session::subscribe)

  static ConnectDecision accepted(std::string user_id = {}, std::vector<std::string> topics = {}) {
    ConnectDecision d;
    d.user_id = std::move(user_id);
    d.topics = std::move(topics);
    return d;
  }
  static ConnectDecision refused(int http_status, std::string reason) {
    ConnectDecision d;
    d.accept = false;
    d.http_status = http_status;
    d.reason = std::move(reason);
    return d;
  }
};

/// Answers one ConnectRequest; callable once, from any thread.
using ConnectDecide = std::function<void(ConnectDecision)>;

}  // namespace fanout

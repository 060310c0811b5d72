// fanout/detail/session_auth.hpp — what a session knows about its client's identity: the verified
// token, when it expires (on the steady clock the session's timers use), and whether the client still
// owes its {"op":"auth"} message. Only sessions of a server with Auth set carry one.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "fanout/identity.hpp"

namespace fanout::detail {

struct SessionAuth {
  using Steady = std::chrono::steady_clock;

  std::shared_ptr<const Identity> identity;  // null: anonymous (so far)
  Steady::time_point expires_at{};           // when the connection ends unless refreshed (exp + leeway)
  Steady::time_point warn_at{};              // when the `expiring` event goes out
  Steady::time_point deadline{};             // pending: the auth message must come by then
  bool expires = false;
  bool warned = false;
  bool pending = false;            // no token yet, and anonymous access is off
  std::string deferred_subscribe;  // ?subscribe= of a pending connection: joined once it authenticates
  std::string deferred_options;    // and the URL's options for it (Session::url_subscribe_options)
};

}  // namespace fanout::detail

// fanout/identity.hpp — who a verified token speaks for, and what it grants.
//
// A TokenVerifier turns a JWT into an Identity. A Session carries one when the client authenticated
// (Session::identity(), Session::user_id()); access rules read it when the client subscribes.
//
// Thread safety: a plain value; a session shares its Identity read-only (std::shared_ptr<const Identity>).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "fanout/export.hpp"

namespace fanout {

struct FANOUT_API Identity {
  using Clock = std::chrono::system_clock;

  std::string user;                          // the `sub` claim ("" when the token has none)
  std::vector<std::string> topics;           // the `topics` claim: topic patterns this token grants ("trades.*")
  std::optional<std::string> topic;          // the `topic` (or `channel`) claim of a per-topic subscribe token
  std::optional<Clock::time_point> expires;  // `exp`; none when the token never expires
  std::string kid;                           // the key that verified it (logs, rotation)
  std::string claims;                        // the whole claims object as JSON, for the application's own claims
};

}  // namespace fanout

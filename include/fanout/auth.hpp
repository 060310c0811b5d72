// fanout/auth.hpp — identity and access control for a Server (Server::Options::auth).
//
// With a verifier, a client proves who it is with a JWT (token_verifier.hpp), from, in this order:
//   - `Authorization: Bearer <token>` on the upgrade request,
//   - the subprotocol list: `Sec-WebSocket-Protocol: fanout.v1, bearer.<token>` (what a browser can
//     send: `new WebSocket(url, ["fanout.v1", "bearer." + token])`); the 101 echoes `fanout.v1`,
//   - `?token=<token>` in the URL (query_token; URLs end up in access logs, so it can be turned off),
//   - or, when none of these came, a first message `{"op":"auth","token":"..."}` within auth_timeout.
// A bad token on the upgrade gets 401 with the reason; a bad one in the auth message an error event
// (code 4401) and close 4401. `sub` becomes Session::user_id(). Before `exp` the client gets
// `{"event":"expiring","exp":T,"in":S}` (expiry_warning ahead) and may send
// `{"op":"refresh","token":"..."}` (same `sub`); at `exp` (+ the verifier's leeway) the connection
// closes with 4410. docs/protocol.md has every message and code.
//
// Access rules (access_rules.hpp) decide each subscribe and each HTTP snapshot/history pull. Origin:
// when allowed_origins is not empty, a browser upgrade (one that sends Origin) from elsewhere gets 403.
//
//   auto verifier = std::make_shared<fanout::TokenVerifier>(fanout::TokenVerifier::Options{.key_file = "keys.json"});
//   fanout::Server::Options o;
//   o.auth.verifier = verifier;
//   o.auth.rules = fanout::AccessRules({{"public.*", fanout::Access::public_}, {"user:{sub}", fanout::Access::user}});
//   o.auth.allowed_origins = {"https://app.example.com"};
//   ...  verifier->reload();   // from any thread, e.g. on SIGHUP
//
// Thread safety: set before the Server is built; the Server copies it. The verifier is shared and
// thread-safe (reload while clients connect).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "fanout/access_rules.hpp"
#include "fanout/export.hpp"
#include "fanout/token_verifier.hpp"

namespace fanout {

struct FANOUT_API Auth {
  std::shared_ptr<TokenVerifier> verifier{};  // null: no tokens, every client is anonymous
  AccessRules rules{};                        // none: every topic needs a verified token (when a verifier is set)
  bool allow_anonymous = false;  // with a verifier: a client without a token may connect (public topics only)
  bool query_token = true;       // accept ?token= on the upgrade and on HTTP pulls
  std::chrono::milliseconds auth_timeout = std::chrono::seconds(5);  // for {"op":"auth"} when no token came
  std::chrono::milliseconds expiry_warning =
      std::chrono::seconds(60);  // `expiring` event this long before exp; 0: none
  /// Origins (scheme://host[:port]) allowed to upgrade; "*" allows any. Empty: no check. A request
  /// without Origin is not from a browser (only browsers send it, and any other client can forge it)
  /// and is allowed unless require_origin.
  std::vector<std::string> allowed_origins{};
  bool require_origin = false;

  /// Whether subscribes and pulls are checked at all (a verifier or rules are set).
  bool checks_access() const noexcept { return verifier != nullptr || !rules.empty(); }
  /// True when `origin` is in allowed_origins (or it holds "*"), compared case-insensitively.
  bool origin_allowed(std::string_view origin) const noexcept;
};

}  // namespace fanout

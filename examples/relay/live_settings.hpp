// The settings a running relay applies on SIGHUP without dropping a client (fanout::Server::reload):
// [server] connection limits, [limits] per-client limits and timers, [auth] access settings and the
// [[acl]] rules. Named as in the configuration file, so the log says what changed in its words.
//
//   for open connections, at their next check: [limits] (queue limits at the next frame, message
//     size at the next message, max_subscriptions and the access rules at the next subscribe, timers
//     at the next tick, the policy at the next overflow); subscriptions already made stay
//   for new connections: [server] connection limits, handshake settings, [auth], [[acl]]
//
// Thread safety: the controlling (ingest) thread, as reload.hpp.
#pragma once

#include <fanout/server.hpp>

#include <string>
#include <vector>

#include "config.hpp"
#include "servers.hpp"

namespace relay {

/// "name old -> new" for every live setting that differs between `in_use` and `fresh`.
std::vector<std::string> live_setting_changes(const Config& in_use, const Config& fresh);

/// Applies `fresh`'s live settings to every client listener and records them in `in_use` (its token
/// verifier stays: its keys reload on their own, its settings need a restart). Throws
/// std::invalid_argument, with nothing applied, when a server refuses them.
void apply_live_settings(Config& in_use, const Config& fresh, Servers& servers);

}  // namespace relay

// SIGHUP: the configuration read again (file, environment, flags) and applied where that can be done
// without dropping a client; the rest is logged as needing a restart. A configuration that does not
// load is logged and the one in use stays.
//
//   applied now:        [log] level; TLS certificate and key (new handshakes use them, open
//                       connections keep theirs); [auth] key_file's keys (TokenVerifier::reload);
//                       [limits], [server] connection limits, [auth] access settings and [[acl]]
//                       (live_settings.hpp: which apply to open connections, which to new ones)
//   needs a restart:    listen addresses, TLS file paths, the admin listener, upstreams, role and
//                       Redis, shards, paths, [topics], sinks, processor, log format, the token
//                       verifier's settings, proxy_protocol, topic_endpoints, http_max_age_s
//
// Thread safety: on the ingest thread (where the SIGHUP handler runs), one reload at a time.
#pragma once

#include <fanout/server.hpp>

#include <string>
#include <vector>

#include "config.hpp"
#include "servers.hpp"

namespace relay {

struct ReloadTargets {
  Config& config;  // in use: the parts applied are updated in it
  Servers& servers;
  fanout::Server* admin;  // null: no admin listener
};

/// Reads the configuration again from `argv` (as at start) and applies what it can to `t`.
void reload(int argc, char** argv, ReloadTargets t);

}  // namespace relay

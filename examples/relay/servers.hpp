// The relay's client side: its WebSocket listeners (the admin routes only when [admin] public opts
// in, behind the token: admin.hpp); plus what the status page, the stats line and /metrics read from
// the running relay.
#pragma once

#include <fanout/hub.hpp>
#include <fanout/library_metrics.hpp>
#include <fanout/metrics.hpp>
#include <fanout/processor.hpp>
#include <fanout/runtime.hpp>
#include <fanout/server.hpp>
#include <fanout/sink.hpp>

#include <memory>
#include <vector>

#include "config.hpp"
#include "feeds.hpp"
#include "status.hpp"

namespace relay {

using Servers = std::vector<std::unique_ptr<fanout::Server>>;

/// One server per [server] listen address, each also serving `routes` (the guarded admin routes, when
/// [admin] public is set; otherwise none) with `callbacks` (the backend proxy's, or none); none for
/// role ingest. Throws StartupError.
Servers build_servers(fanout::Runtime& runtime, fanout::Hub& hub, const Config& config,
                      const std::vector<fanout::HttpRoute>& routes, const fanout::Server::Callbacks& callbacks = {});

/// SIGHUP: reads the token key file again and logs which kids came, went or changed (or why the
/// file was refused and the old keys stay). Null: tokens are off, nothing to reload.
void reload_keys(fanout::TokenVerifier* verifier);

/// Connections, deliveries, drops and upstream states, read now (any thread).
LiveTotals live_totals(const Servers& servers, const fanout::Hub& hub, const Feeds& feeds);

/// Every series /metrics serves: per server, per upstream connection, per topic, processor, sinks.
fanout::MetricRegistrations add_relay_metrics(fanout::MetricsRegistry& registry, const Config& config,
                                              const Servers& servers, const fanout::Hub& hub, const Feeds& feeds,
                                              const StatusBoard& board, const fanout::Processor* processor,
                                              const fanout::SinkSet& sinks);

}  // namespace relay

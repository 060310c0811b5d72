// fanout/library_metrics.hpp — the library's own metrics, registered into a MetricsRegistry.
//
// Everything here reads counters the components already keep (per shard, summed on scrape): nothing
// is added to the delivery path. See docs/metrics.md for every name and what it counts.
//
//   fanout::MetricsRegistry registry;
//   options.http_routes.push_back(fanout::metrics_route(registry));
//   fanout::Server server(runtime, hub, options);
//   auto m = fanout::add_server_metrics(registry, server, hub);
//   auto u = fanout::add_upstream_metrics(registry, upstream, "okx");
//
// Thread safety: call from the thread that owns the components; keep the returned registrations no
// longer than the components they read (destroy them first: the registry then stops reading).
#pragma once

#include <string>
#include <vector>

#include "fanout/export.hpp"
#include "fanout/metrics.hpp"

namespace fanout {

class Hub;
class Server;
class Upstream;
class Router;

using MetricRegistrations = std::vector<MetricsRegistry::Registration>;

/// Connections, subscriptions, topics, published, delivered, dropped per policy, queued bytes, write
/// stalls, slow disconnects, gather-writes, accept errors and the publish-to-write latency histogram.
/// `labels` are added to every series (e.g. {{"listener","public"}} when one process has several
/// servers; the shard-wide counters are then the same under each).
FANOUT_API MetricRegistrations add_server_metrics(MetricsRegistry& registry, const Server& server, const Hub& hub,
                                                  const MetricLabels& labels = {});

/// State (one series per state, 1 for the current one), connects, reconnects, failures, messages,
/// bytes, heartbeats and bad input of one upstream connection, labelled upstream="<name>".
FANOUT_API MetricRegistrations add_upstream_metrics(MetricsRegistry& registry, const Upstream& upstream,
                                                    const std::string& name);

/// What a router made of an upstream's messages (fanout_router_messages_total{result=routed,
/// control, heartbeat, unmatched, invalid}) and how many were not JSON (fanout_router_non_json_total),
/// labelled upstream="<name>".
FANOUT_API MetricRegistrations add_router_metrics(MetricsRegistry& registry, const Router& router,
                                                  const std::string& name);

}  // namespace fanout

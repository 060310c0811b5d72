#include "servers.hpp"

#include <fanout/pipeline_metrics.hpp>

#include <algorithm>

#include <fmt/ranges.h>

#include "log.hpp"

namespace relay {

Servers build_servers(fanout::Runtime& runtime, fanout::Hub& hub, const Config& config,
                      const std::vector<fanout::HttpRoute>& routes, const fanout::Server::Callbacks& callbacks) {
  Servers servers;
  if (config.role == Role::ingest) return servers;  // an ingest-only node serves no clients
  building(1, "cannot listen", [&] {
    for (const auto& l : config.listen) {
      auto o = config.server;
      o.host = l.host;
      o.port = l.port;
      o.paths = config.paths;
      o.http_routes.insert(o.http_routes.end(), routes.begin(), routes.end());
      if (l.tls) o.tls = fanout::Server::Tls{config.tls_cert, config.tls_key, config.tls_own_records};
      servers.push_back(std::make_unique<fanout::Server>(runtime, hub, o, callbacks));
      log("serving {}://{}:{}{} (policy {}, queue {} bytes{})", l.tls ? "wss" : "ws", l.host, servers.back()->port(),
          config.paths.front(), o.session.policy->name(), o.session.queue.max_bytes,
          o.auth.verifier ? fmt::format(", tokens from {} ({} keys)", o.auth.verifier->options().key_file,
                                        o.auth.verifier->kids().size())
                          : std::string());
    }
  });
  return servers;
}

void reload_keys(fanout::TokenVerifier* verifier) {
  if (!verifier) {
    log("SIGHUP: no [auth] key_file, nothing to reload");
    return;
  }
  const auto r = verifier->reload();
  if (!r.ok) {
    log_warn("SIGHUP: key file {} refused, keeping the keys in use: {}", verifier->options().key_file, r.error);
    return;
  }
  log("SIGHUP: keys reloaded from {}: {} in use; added [{}] removed [{}] changed [{}]", verifier->options().key_file,
      verifier->kids().size(), fmt::join(r.added, ","), fmt::join(r.removed, ","), fmt::join(r.changed, ","));
}

LiveTotals live_totals(const Servers& servers, const fanout::Hub& hub, const Feeds& feeds) {
  LiveTotals t;
  for (auto& s : servers) {
    const auto st = s->stats();
    t.connections += st.websockets;
    t.subscriptions += st.subscriptions;
    t.queued_bytes += st.queued_bytes;
    // Shard counters are shared by all servers: the same value under each.
    t.delivered = std::max(t.delivered, st.deliveries);
    t.dropped = std::max(t.dropped, st.dropped_newest + st.dropped_oldest + st.conflated + st.disconnected_slow);
  }
  t.topics = hub.active_topic_count();
  t.published = hub.published();
  for (auto& f : feeds)
    for (std::size_t i = 0; i < f->connections.size(); ++i) {
      const auto st = f->connections[i]->stats();
      t.upstreams.push_back(
          {f->names[i], fanout::Upstream::to_string(st.state), st.url, st.connects, st.failures, st.messages});
    }
  return t;
}

fanout::MetricRegistrations add_relay_metrics(fanout::MetricsRegistry& registry, const Config& config,
                                              const Servers& servers, const fanout::Hub& hub, const Feeds& feeds,
                                              const StatusBoard& board, const fanout::Processor* processor,
                                              const fanout::SinkSet& sinks) {
  fanout::MetricRegistrations metrics;
  auto keep = [&](fanout::MetricRegistrations rs) {
    for (auto& r : rs) metrics.push_back(std::move(r));
  };
  // With several listeners each server's series carry listener="host:port".
  for (std::size_t i = 0; i < servers.size(); ++i) {
    fanout::MetricLabels labels;
    if (servers.size() > 1)
      labels.push_back({"listener", fmt::format("{}:{}", config.listen[i].host, servers[i]->port())});
    keep(fanout::add_server_metrics(registry, *servers[i], hub, labels));
  }
  for (auto& f : feeds) {
    for (std::size_t i = 0; i < f->connections.size(); ++i)
      keep(fanout::add_upstream_metrics(registry, *f->connections[i], f->names[i]));
    keep(fanout::add_router_metrics(registry, f->router, f->config.name));
  }
  metrics.push_back(registry.add_family("fanout_relay_topic_messages_total",
                                        "Messages routed from upstreams, per topic (at most status_max_topics; "
                                        "the rest as topic=\"(other)\")",
                                        fanout::MetricsRegistry::Type::counter,
                                        [&board] { return board.topic_samples(); }));
  if (processor) keep(fanout::add_processor_metrics(registry, *processor));
  for (const auto& sink : sinks.sinks()) keep(fanout::add_sink_metrics(registry, *sink, sink->options().name));
  return metrics;
}

}  // namespace relay

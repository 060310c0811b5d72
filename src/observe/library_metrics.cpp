#include "fanout/library_metrics.hpp"

#include <utility>

#include "fanout/detail/deflate_stats.hpp"
#include "fanout/hub.hpp"
#include "fanout/router.hpp"
#include "fanout/server.hpp"
#include "fanout/upstream.hpp"

namespace fanout {

namespace {
MetricLabels with(MetricLabels labels, const MetricLabels& more) {
  labels.insert(labels.end(), more.begin(), more.end());
  return labels;
}
}  // namespace

MetricRegistrations add_server_metrics(MetricsRegistry& r, const Server& server, const Hub& hub,
                                       const MetricLabels& labels) {
  MetricRegistrations out;
  auto stat = [&server](auto field) { return [&server, field] { return static_cast<double>(server.stats().*field); }; };
  using S = Server::Stats;
  out.push_back(r.add_gauge("fanout_connections", "Open downstream connections (WebSocket and pending handshakes)",
                            labels, stat(&S::sessions)));
  out.push_back(r.add_gauge("fanout_websocket_connections",
                            "Connections past the WebSocket upgrade (sampled every tick)", labels,
                            stat(&S::websockets)));
  out.push_back(
      r.add_counter("fanout_connections_accepted_total", "TCP connections accepted", labels, stat(&S::accepted)));
  out.push_back(r.add_counter("fanout_connections_upgraded_total", "Connections upgraded to WebSocket", labels,
                              stat(&S::upgraded)));
  out.push_back(r.add_counter("fanout_handshakes_rejected_total", "Handshakes answered with an HTTP error or timed out",
                              labels, stat(&S::rejected)));
  out.push_back(r.add_counter("fanout_accept_errors_total", "Failed accepts (e.g. out of file descriptors)", labels,
                              stat(&S::accept_errors)));
  out.push_back(
      r.add_gauge("fanout_subscriptions", "Topic subscriptions of open connections", labels, stat(&S::subscriptions)));
  out.push_back(r.add_gauge("fanout_topics", "Topics the hub holds", labels,
                            [&hub] { return static_cast<double>(hub.topic_count()); }));
  out.push_back(r.add_gauge("fanout_topics_with_subscribers", "Topics with at least one subscriber", labels,
                            [&hub] { return static_cast<double>(hub.active_topic_count()); }));
  out.push_back(r.add_counter("fanout_published_total",
                              "Messages Hub::publish accepted (and posted to the shards with subscribers)", labels,
                              [&hub] { return static_cast<double>(hub.published()); }));
  out.push_back(
      r.add_counter("fanout_deltas_computed_total",
                    "Publishes that computed a Fossil delta for \"delta\":\"fossil\" subscribers (once for all)",
                    labels, [&hub] { return static_cast<double>(hub.deltas()); }));
  out.push_back(r.add_counter("fanout_delivered_total", "Frames queued to subscribers (one per recipient)", labels,
                              stat(&S::deliveries)));
  out.push_back(r.add_counter("fanout_dropped_total", "Frames a backpressure policy dropped or replaced",
                              with(labels, {{"policy", "drop_newest"}}), stat(&S::dropped_newest)));
  out.push_back(r.add_counter("fanout_dropped_total", "Frames a backpressure policy dropped or replaced",
                              with(labels, {{"policy", "drop_oldest"}}), stat(&S::dropped_oldest)));
  out.push_back(r.add_counter("fanout_dropped_total", "Frames a backpressure policy dropped or replaced",
                              with(labels, {{"policy", "conflate"}}), stat(&S::conflated)));
  out.push_back(r.add_counter(
      "fanout_slow_disconnects_total", "Slow clients disconnected", with(labels, {{"reason", "policy"}}), [&server] {
        const auto st = server.stats();
        return static_cast<double>(st.disconnected_slow - st.write_timeouts - st.budget_disconnected);
      }));
  out.push_back(r.add_counter("fanout_slow_disconnects_total", "Slow clients disconnected",
                              with(labels, {{"reason", "write_timeout"}}), stat(&S::write_timeouts)));
  out.push_back(r.add_gauge("fanout_queued_bytes", "Bytes waiting in downstream queues (sampled every tick)", labels,
                            stat(&S::queued_bytes)));
  // The server-wide queue memory budget (docs/tuning.md, "Queue memory budget").
  out.push_back(r.add_gauge("fanout_queue_budget_bytes", "Server-wide queue memory budget in force (0: off)", labels,
                            stat(&S::queue_budget_bytes)));
  out.push_back(r.add_gauge("fanout_queue_memory_bytes",
                            "What queues hold, by kind: ring slots, and live frames counted once",
                            with(labels, {{"kind", "slots"}}), stat(&S::queue_slot_bytes)));
  out.push_back(r.add_gauge("fanout_queue_memory_bytes",
                            "What queues hold, by kind: ring slots, and live frames counted once",
                            with(labels, {{"kind", "frames"}}), stat(&S::frame_bytes)));
  out.push_back(r.add_counter("fanout_budget_dropped_total",
                              "Frames dropped or conflated because the queue budget was reached", labels,
                              stat(&S::budget_dropped)));
  out.push_back(r.add_counter("fanout_slow_disconnects_total", "Slow clients disconnected",
                              with(labels, {{"reason", "budget"}}), stat(&S::budget_disconnected)));
  out.push_back(r.add_gauge("fanout_budget_cap_frames",
                            "Frames per client the queue budget allows now (0: no pressure)", labels,
                            stat(&S::budget_cap_frames)));
  out.push_back(r.add_counter("fanout_write_stalls_total",
                              "Writes that found a client's socket full and waited for it (plain ws)", labels,
                              stat(&S::write_stalls)));
  out.push_back(r.add_counter("fanout_gather_writes_total", "Gather-writes (syscalls) that carried data", labels,
                              stat(&S::writes)));
  out.push_back(r.add_counter("fanout_throttle_flushes_total",
                              "Ticks of throttled lanes (topic, shard, interval) that carried frames", labels,
                              stat(&S::throttle_flushes)));
  out.push_back(r.add_counter("fanout_throttle_conflated_total",
                              "Frames replaced by a newer one of the same key in a throttled lane", labels,
                              stat(&S::throttle_conflated)));
  // Connection limits and per-client bounds (docs/security.md).
  out.push_back(r.add_gauge("fanout_connections_max", "The connection limit in force (max_connections)", labels,
                            stat(&S::max_connections)));
  for (auto [limit, field] : {std::pair{"total", &S::refused_total}, std::pair{"per_ip", &S::refused_per_ip},
                              std::pair{"handshake_rate", &S::refused_rate}})
    out.push_back(r.add_counter("fanout_connections_refused_total",
                                "Connections refused by a connection limit (503; 429 for handshake_rate)",
                                with(labels, {{"limit", limit}}), stat(field)));
  out.push_back(r.add_counter("fanout_head_timeouts_total",
                              "Connections closed because the request head was not complete within handshake_timeout",
                              labels, stat(&S::head_timeouts)));
  for (auto [reason, field] :
       {std::pair{"no_subscription", &S::subscribe_timeouts}, std::pair{"rate_limit", &S::rate_limited},
        std::pair{"reply_overflow", &S::reply_overflows}})
    out.push_back(r.add_counter("fanout_policy_closes_total", "Sessions closed with 1008 by a per-client bound",
                                with(labels, {{"reason", reason}}), stat(field)));
  out.push_back(r.add_counter("fanout_read_pauses_total",
                              "Times a session stopped reading because its client did not read", labels,
                              stat(&S::read_pauses)));
  out.push_back(r.add_counter("fanout_deltas_written_total",
                              "Fossil deltas written instead of full messages (\"delta\":\"fossil\" subscriptions)",
                              labels, stat(&S::deltas_written)));
  out.push_back(r.add_counter("fanout_drop_notices_total",
                              "{\"event\":\"dropped\"} notices sent to clients that asked for them", labels,
                              stat(&S::drop_notices)));
  out.push_back(r.add_counter("fanout_tls_own_records_total",
                              "TLS 1.3 connections whose records fanout protects after OpenSSL's handshake", labels,
                              stat(&S::tls_own_records)));
  out.push_back(r.add_counter("fanout_tls_record_errors_total",
                              "Of those, connections ended by a bad record (tag, size or type) with a TLS alert",
                              labels, stat(&S::tls_record_errors)));
  // permessage-deflate compress-once (docs/protocol.md, "Compression"): process-wide, once per message.
  out.push_back(r.add_counter(
      "fanout_deflate_compressions_total",
      "Messages compressed for permessage-deflate clients (once each, not per client)", labels,
      [] { return static_cast<double>(detail::deflate_stats().compressions.load(std::memory_order_relaxed)); }));
  out.push_back(r.add_counter(
      "fanout_deflate_bytes_saved_total", "Frame bytes compression spared, per message (not per client)", labels,
      [] { return static_cast<double>(detail::deflate_stats().bytes_saved.load(std::memory_order_relaxed)); }));
  out.push_back(r.add_counter(
      "fanout_deflate_raced_total",
      "Deliveries to deflate clients sent uncompressed because another shard was compressing the message", labels,
      [] { return static_cast<double>(detail::deflate_stats().raced.load(std::memory_order_relaxed)); }));
  out.push_back(r.add_histogram("fanout_publish_to_write_seconds",
                                "Time from Hub::publish to the gather-write carrying the frame (one sample per write)",
                                labels, [&server] { return server.publish_to_write_latency(); }));
  return out;
}

MetricRegistrations add_upstream_metrics(MetricsRegistry& r, const Upstream& up, const std::string& name) {
  MetricRegistrations out;
  const MetricLabels labels{{"upstream", name}};
  for (auto state :
       {Upstream::State::stopped, Upstream::State::connecting, Upstream::State::live, Upstream::State::backing_off}) {
    out.push_back(r.add_gauge("fanout_upstream_state", "1 for the upstream connection's current state",
                              with(labels, {{"state", Upstream::to_string(state)}}),
                              [&up, state] { return up.state() == state ? 1.0 : 0.0; }));
  }
  auto stat = [&up](auto field) { return [&up, field] { return static_cast<double>(up.stats().*field); }; };
  using S = Upstream::Stats;
  out.push_back(r.add_counter("fanout_upstream_connects_total", "Upgrades that succeeded", labels, stat(&S::connects)));
  out.push_back(r.add_counter("fanout_upstream_reconnects_total", "Successful connects after the first", labels, [&up] {
    const auto c = up.stats().connects;
    return static_cast<double>(c > 0 ? c - 1 : 0);
  }));
  out.push_back(r.add_counter("fanout_upstream_failures_total", "Connection attempts or connections that failed",
                              labels, stat(&S::failures)));
  out.push_back(r.add_counter("fanout_upstream_messages_total", "Data messages received", labels, stat(&S::messages)));
  out.push_back(r.add_counter("fanout_upstream_bytes_total", "Payload bytes received (after inflation)", labels,
                              stat(&S::bytes)));
  out.push_back(
      r.add_counter("fanout_upstream_heartbeats_sent_total", "Heartbeats sent", labels, stat(&S::heartbeats_sent)));
  out.push_back(r.add_counter("fanout_upstream_bad_input_total",
                              "Protocol errors, inflate errors and oversize messages", labels, stat(&S::bad_input)));
  return out;
}

MetricRegistrations add_router_metrics(MetricsRegistry& r, const Router& router, const std::string& name) {
  MetricRegistrations out;
  const MetricLabels labels{{"upstream", name}};
  using C = Router::Counters;
  const std::pair<const char*, std::uint64_t C::*> results[] = {{"routed", &C::routed},
                                                                {"control", &C::control},
                                                                {"heartbeat", &C::heartbeat},
                                                                {"unmatched", &C::unmatched},
                                                                {"invalid", &C::invalid}};
  for (const auto& entry : results) {  // not a structured binding: clang 14 cannot capture one
    const auto field = entry.second;
    out.push_back(r.add_counter("fanout_router_messages_total", "Upstream messages by what the router made of them",
                                with(labels, {{"result", entry.first}}),
                                [&router, field] { return static_cast<double>(router.counters().*field); }));
  }
  out.push_back(r.add_counter("fanout_router_non_json_total",
                              "Upstream messages that are not JSON (routed to non_json_topic or default_topic, "
                              "else dropped as invalid)",
                              labels, [&router] { return static_cast<double>(router.counters().non_json); }));
  return out;
}

}  // namespace fanout

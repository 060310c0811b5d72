#include "live_settings.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace relay {
namespace {

using Options = fanout::Server::Options;

// One live setting: its name in the configuration and how it shows in a log line.
struct Setting {
  const char* name;
  std::string (*show)(const Options&);
};

std::string rules(const Options& o) {
  std::string r;
  for (const auto& rule : o.auth.rules.rules())
    r += fmt::format("{}={} ", rule.pattern, fanout::to_string(rule.access));
  return fmt::format("[{}] default {}", r, fanout::to_string(o.auth.rules.default_access()));
}

const Setting k_live[] = {
    // [server]: connections
    {"handshake_timeout_ms", [](const Options& o) { return fmt::format("{}", o.handshake_timeout.count()); }},
    {"max_request_head_bytes", [](const Options& o) { return fmt::format("{}", o.max_request_head_bytes); }},
    {"envelope_path", [](const Options& o) { return fmt::format("{}", fmt::join(o.envelope_paths, ",")); }},
    {"max_connections", [](const Options& o) { return fmt::format("{}", o.max_connections); }},
    {"max_connections_per_ip", [](const Options& o) { return fmt::format("{}", o.max_connections_per_ip); }},
    {"handshakes_per_second_per_ip",
     [](const Options& o) { return fmt::format("{}", o.handshakes_per_second_per_ip); }},
    {"handshake_burst_per_ip", [](const Options& o) { return fmt::format("{}", o.handshake_burst_per_ip); }},
    {"limit_exempt", [](const Options& o) { return fmt::format("{}", fmt::join(o.limit_exempt, ",")); }},
    {"exempt_loopback", [](const Options& o) { return fmt::format("{}", o.exempt_loopback); }},
    {"trusted_proxies", [](const Options& o) { return fmt::format("{}", fmt::join(o.trusted_proxies, ",")); }},
    {"retry_after_ms", [](const Options& o) { return fmt::format("{}", o.retry_after.count()); }},
    {"queue_budget_bytes", [](const Options& o) { return fmt::format("{}", o.queue_budget_bytes); }},
    // [limits]: per client
    {"max_queue_bytes", [](const Options& o) { return fmt::format("{}", o.session.queue.max_bytes); }},
    {"max_queue_frames", [](const Options& o) { return fmt::format("{}", o.session.queue.max_frames); }},
    {"control_reserve_bytes",
     [](const Options& o) { return fmt::format("{}", o.session.queue.control_reserve_bytes); }},
    {"max_message_bytes", [](const Options& o) { return fmt::format("{}", o.session.max_message_bytes); }},
    {"max_subscriptions", [](const Options& o) { return fmt::format("{}", o.session.max_subscriptions); }},
    {"ping_interval_ms", [](const Options& o) { return fmt::format("{}", o.session.ping_interval.count()); }},
    {"idle_timeout_ms", [](const Options& o) { return fmt::format("{}", o.session.idle_timeout.count()); }},
    {"write_timeout_ms", [](const Options& o) { return fmt::format("{}", o.session.write_timeout.count()); }},
    {"read_pause_bytes", [](const Options& o) { return fmt::format("{}", o.session.read_pause_bytes); }},
    {"control_ops_per_second", [](const Options& o) { return fmt::format("{}", o.session.control_ops_per_second); }},
    {"control_ops_burst", [](const Options& o) { return fmt::format("{}", o.session.control_ops_burst); }},
    {"pings_per_second", [](const Options& o) { return fmt::format("{}", o.session.pings_per_second); }},
    {"pings_burst", [](const Options& o) { return fmt::format("{}", o.session.pings_burst); }},
    {"subscribe_timeout_ms", [](const Options& o) { return fmt::format("{}", o.session.subscribe_timeout.count()); }},
    {"policy",
     [](const Options& o) { return std::string(o.session.policy ? o.session.policy->name() : std::string_view()); }},
    // [auth] and [[acl]]
    {"acl", rules},
    {"allow_anonymous", [](const Options& o) { return fmt::format("{}", o.auth.allow_anonymous); }},
    {"query_token", [](const Options& o) { return fmt::format("{}", o.auth.query_token); }},
    {"auth_timeout_ms", [](const Options& o) { return fmt::format("{}", o.auth.auth_timeout.count()); }},
    {"expiry_warning_ms", [](const Options& o) { return fmt::format("{}", o.auth.expiry_warning.count()); }},
    {"allowed_origins", [](const Options& o) { return fmt::format("{}", fmt::join(o.auth.allowed_origins, ",")); }},
    {"require_origin", [](const Options& o) { return fmt::format("{}", o.auth.require_origin); }},
};

}  // namespace

std::vector<std::string> live_setting_changes(const Config& in_use, const Config& fresh) {
  std::vector<std::string> changes;
  for (const auto& s : k_live) {
    const auto before = s.show(in_use.server), after = s.show(fresh.server);
    if (before != after) changes.push_back(fmt::format("{} {} -> {}", s.name, before, after));
  }
  return changes;
}

void apply_live_settings(Config& in_use, const Config& fresh, Servers& servers) {
  Options next = fresh.server;
  next.auth.verifier = in_use.server.auth.verifier;  // the keys in use; SIGHUP reloads them in place
  // What a restart would change stays (reload.cpp logs it): Server::reload keeps these too.
  next.proxy_protocol = in_use.server.proxy_protocol;
  next.topic_endpoints = in_use.server.topic_endpoints;
  next.http_max_age = in_use.server.http_max_age;
  // Every server checks the options alike (Server::reload throws before changing anything), so a
  // refusal comes from the first and none is left half-applied.
  for (auto& s : servers) s->reload(next);
  in_use.server = std::move(next);
  in_use.auth.acl = fresh.auth.acl;
  in_use.auth.default_access = fresh.auth.default_access;
}

}  // namespace relay

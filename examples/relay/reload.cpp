#include "reload.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <exception>
#include <set>
#include <string>

#include "env.hpp"
#include "live_settings.hpp"
#include "log.hpp"

namespace relay {
namespace {

// What a restart would change, one line per part, so two configurations compare part by part.
struct Part {
  const char* name;
  std::string (*describe)(const Config&);
};

std::string listeners(const Config& c) {
  std::string r;
  for (const auto& l : c.listen) r += fmt::format("{}:{}:{} ", l.host, l.port, l.tls);
  return r;
}
std::string upstreams(const Config& c) {
  std::string r;
  for (const auto& u : c.upstreams)
    if (!(c.simulator.enabled && u.name == "simulator"))  // the bundled one, added at start (feeds.cpp)
      r += fmt::format("{} [{}] [{}] {} {}|", u.name, fmt::join(u.options.urls, ","),
                       fmt::join(u.options.subscribe, ","), u.route.topic_template, u.standby);
  return r;
}
std::string history_and_topics(const Config& c) {
  const auto& h = c.hub;
  // As a set, with the bundled simulator's topics, which start declares (feeds.cpp) and a fresh load does not.
  std::set<std::string> declared(h.topics.begin(), h.topics.end());
  if (c.simulator.enabled)  // feeds.cpp's list
    declared.insert({"tickers:BTC-USDT", "tickers:ETH-USDT", "trades:BTC-USDT", "trades:ETH-USDT"});
  return fmt::format("{} {} {} {} {} {} [{}] {} {} {} {}", h.history.max_messages, h.history.max_bytes,
                     h.history.max_keys, h.history.max_snapshot_bytes, h.max_topics, h.max_history_bytes,
                     fmt::join(declared, ","), h.client_topics.allow, h.client_topics.max_topics,
                     h.client_topics.max_per_connection, h.client_topics.max_per_address);
}
std::string sinks(const Config& c) {
  std::string r;
  for (const auto& s : c.sinks)
    r += fmt::format("{} {} {} {}|", s.options.name, s.type, s.journal.path, s.postgres.table);
  return r;
}

const Part k_restart_parts[] = {
    {"listen addresses", listeners},
    {"TLS file paths", [](const Config& c) { return c.tls_cert + "|" + c.tls_key; }},
    {"TLS record layer", [](const Config& c) { return std::string(c.tls_own_records ? "fanout" : "openssl"); }},
    {"admin listener",
     [](const Config& c) {
       return c.admin.listen ? fmt::format("{}:{}", c.admin.listen->host, c.admin.listen->port) : std::string("off");
     }},
    {"upstreams", upstreams},
    {"role and redis",
     [](const Config& c) {
       return fmt::format("{} {} {}:{} {}", to_string(c.role), c.redis.enabled, c.redis.host, c.redis.port,
                          c.redis.prefix);
     }},
    {"proxy_protocol, topic_endpoints, http_max_age_s",
     [](const Config& c) {
       return fmt::format("{} {} {}", c.server.proxy_protocol, c.server.topic_endpoints, c.server.http_max_age.count());
     }},
    {"shards and paths", [](const Config& c) { return fmt::format("{} {}", c.shards, fmt::join(c.paths, ",")); }},
    {"[history] and [topics]", history_and_topics},
    {"sinks", sinks},
    {"processor", [](const Config& c) { return fmt::format("{} {}", c.processor.enabled, c.processor.stage); }},
    {"[auth] key file path and token settings",
     [](const Config& c) {
       const auto& v = c.auth.verifier;
       return fmt::format("{} {} {} {} {} {}", v.key_file, v.leeway.count(), v.require_exp, v.issuer, v.audience,
                          v.max_token_bytes);
     }},
    {"log format", [](const Config& c) { return std::string(c.log.format == LogFormat::json ? "json" : "text"); }},
};

void reload_tls(const Config& fresh, ReloadTargets& t, std::vector<std::string>& applied) {
  if (fresh.tls_cert != t.config.tls_cert || fresh.tls_key != t.config.tls_key) return;  // a restart's
  std::size_t reloaded = 0;
  for (auto& s : t.servers) {
    if (!s->options().tls) continue;
    try {
      s->reload_tls();
      ++reloaded;
    } catch (const std::exception& e) {
      log_error("SIGHUP: TLS certificate {} / key {} refused, keeping the ones in use: {}", t.config.tls_cert,
                t.config.tls_key, e.what());
      return;
    }
  }
  if (reloaded) applied.push_back(fmt::format("TLS certificate from {} ({} listener(s))", t.config.tls_cert, reloaded));
}

}  // namespace

void reload(int argc, char** argv, ReloadTargets t) {
  // The keys first, on their own: a key file that does not load keeps the keys in use (and makes the
  // configuration below refused too, since load() reads it), a good one applies whatever else fails.
  reload_keys(t.config.server.auth.verifier.get());  // logs its own line, as before
  Config fresh;
  try {
    if (!load(argc, argv, process_environment(), fresh)) return;
  } catch (const std::exception& e) {
    log_error("SIGHUP: configuration refused, keeping the one in use: {}", e.what());
    return;
  }
  for (const auto& w : fresh.warnings) log_warn("{}", w);
  std::vector<std::string> applied;
  if (fresh.log.level != t.config.log.level) {
    applied.push_back(fmt::format("log level {} -> {}", to_string(t.config.log.level), to_string(fresh.log.level)));
    t.config.log.level = fresh.log.level;
    set_log_level(fresh.log.level);
  }
  reload_tls(fresh, t, applied);
  std::vector<std::string> restart;
  for (const auto& p : k_restart_parts)
    if (p.describe(fresh) != p.describe(t.config)) restart.emplace_back(p.name);
  // Limits and access rules, on every client listener: clients stay connected (live_settings.hpp).
  if (auto changes = live_setting_changes(t.config, fresh); !changes.empty()) {
    try {
      apply_live_settings(t.config, fresh, t.servers);
      applied.push_back(fmt::format("{}", fmt::join(changes, ", ")));
    } catch (const std::exception& e) {
      log_error("SIGHUP: limits and access rules refused, keeping the ones in use: {}", e.what());
    }
  }
  log("SIGHUP: configuration reloaded{}{}",
      applied.empty() ? "" : fmt::format("; applied: {}", fmt::join(applied, ", ")),
      restart.empty() ? "" : fmt::format("; changed but needs a restart: {}", fmt::join(restart, ", ")));
}

}  // namespace relay

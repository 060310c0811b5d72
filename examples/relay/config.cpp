#include "config.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <stdexcept>

namespace relay {
namespace {

using ms = std::chrono::milliseconds;

Listen parse_listen(const std::string& s, bool tls) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error(fmt::format("listen address '{}' must be HOST:PORT", s));
  Listen l;
  l.host = s.substr(0, colon);
  if (l.host.starts_with('[') && l.host.ends_with(']')) l.host = l.host.substr(1, l.host.size() - 2);
  const std::string_view digits = std::string_view(s).substr(colon + 1);
  unsigned long port = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || port > 65535)
    throw std::runtime_error(fmt::format("listen address '{}' needs a port 0..65535", s));
  l.port = static_cast<std::uint16_t>(port);
  l.tls = tls;
  return l;
}

template <class T>
void read(const toml::table& t, std::string_view key, T& out) {
  if (auto v = t[key].value<T>())
    out = *v;
  else if (t.contains(key))
    throw std::runtime_error(fmt::format("'{}' has the wrong type", key));
}
// An integer setting in lo..hi; out keeps its value when the key is absent.
template <class T>
void read_int(const toml::table& t, std::string_view section, std::string_view key, std::int64_t lo, std::int64_t hi,
              T& out) {
  std::int64_t v = static_cast<std::int64_t>(out);
  read(t, key, v);
  if (v < lo || v > hi) throw std::runtime_error(fmt::format("{}.{} must be {}..{}", section, key, lo, hi));
  out = static_cast<T>(v);
}
constexpr std::int64_t k_int_max = std::numeric_limits<std::int64_t>::max();

void read_ms(const toml::table& t, std::string_view key, ms& out) {
  if (auto v = t[key].value<std::int64_t>()) {
    if (*v < 0) throw std::runtime_error(fmt::format("'{}' must not be negative", key));
    out = ms(*v);
  } else if (t.contains(key)) {
    throw std::runtime_error(fmt::format("'{}' must be an integer (milliseconds)", key));
  }
}
std::vector<std::string> strings(const toml::table& t, std::string_view key) {
  std::vector<std::string> r;
  if (auto* a = t[key].as_array()) {
    for (auto& e : *a) {
      auto s = e.value<std::string>();
      if (!s) throw std::runtime_error(fmt::format("'{}' must be a list of strings", key));
      r.push_back(*s);
    }
  } else if (auto s = t[key].value<std::string>()) {
    r.push_back(*s);
  } else if (t.contains(key)) {
    throw std::runtime_error(fmt::format("'{}' must be a string or a list of strings", key));
  }
  return r;
}

fanout::Upstream::Heartbeat heartbeat_by_name(const std::string& s) {
  if (s == "text") return fanout::Upstream::Heartbeat::text;
  if (s == "ping") return fanout::Upstream::Heartbeat::ws_ping;
  if (s == "none") return fanout::Upstream::Heartbeat::none;
  throw std::runtime_error(fmt::format("heartbeat '{}' must be text, ping or none", s));
}

Role role_by_name(const std::string& s) {
  if (s == "both") return Role::both;
  if (s == "ingest") return Role::ingest;
  if (s == "edge") return Role::edge;
  throw std::runtime_error(fmt::format("role '{}' must be both, ingest or edge", s));
}

// redis://HOST:PORT, HOST:PORT or HOST.
void parse_redis_address(const std::string& s, RedisConfig& r) {
  std::string rest = s.starts_with("redis://") ? s.substr(8) : s;
  if (rest.ends_with('/')) rest.pop_back();
  if (rest.empty()) throw std::runtime_error(fmt::format("redis address '{}' needs a host", s));
  if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    const std::string_view digits = std::string_view(rest).substr(colon + 1);
    unsigned long port = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || port == 0 || port > 65535)
      throw std::runtime_error(fmt::format("redis address '{}' needs a port 1..65535", s));
    r.host = rest.substr(0, colon);
    r.port = static_cast<std::uint16_t>(port);
    if (r.host.empty()) throw std::runtime_error(fmt::format("redis address '{}' needs a host", s));
  } else {
    r.host = rest;
  }
  r.enabled = true;
}

void apply_file(const std::string& path, Config& c) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(
        fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column, e.description()));
  }
  try {
    if (auto* s = root["server"].as_table()) {
      for (auto& l : strings(*s, "listen")) c.listen.push_back(parse_listen(l, false));
      for (auto& l : strings(*s, "listen_tls")) c.listen.push_back(parse_listen(l, true));
      if (s->contains("path")) c.paths = strings(*s, "path");
      read_int(*s, "server", "shards", 0, 64, c.shards);
      read(*s, "tls_cert", c.tls_cert);
      read(*s, "tls_key", c.tls_key);
      read_ms(*s, "handshake_timeout_ms", c.server.handshake_timeout);
      read_int(*s, "server", "max_request_head_bytes", 1, k_int_max, c.server.max_request_head_bytes);
      read_int(*s, "server", "stats_interval_s", 0, std::numeric_limits<unsigned>::max(), c.stats_interval_s);
      read_ms(*s, "drain_ms", c.drain);
      if (s->contains("envelope_path")) c.server.envelope_paths = strings(*s, "envelope_path");
      read(*s, "topic_endpoints", c.server.topic_endpoints);
      std::int64_t max_age = c.server.http_max_age.count();
      read_int(*s, "server", "http_max_age_s", 0, 86400 * 365, max_age);
      c.server.http_max_age = std::chrono::seconds(max_age);
    }
    if (auto* h = root["history"].as_table()) {
      read_int(*h, "history", "max_messages", 0, k_int_max, c.hub.history.max_messages);
      read_int(*h, "history", "max_bytes", 0, k_int_max, c.hub.history.max_bytes);
      read_int(*h, "history", "max_keys", 0, k_int_max, c.hub.history.max_keys);
      read_int(*h, "history", "max_topics", 1, k_int_max, c.hub.max_topics);
      read_int(*h, "history", "max_total_bytes", 0, k_int_max, c.hub.max_history_bytes);
    }
    if (auto* l = root["limits"].as_table()) {
      auto& so = c.server.session;
      auto size = [&](std::string_view key, std::size_t& out) {
        std::int64_t v = static_cast<std::int64_t>(out);
        read(*l, key, v);
        if (v <= 0) throw std::runtime_error(fmt::format("limits.{} must be positive", key));
        out = static_cast<std::size_t>(v);
      };
      size("max_queue_bytes", so.queue.max_bytes);
      size("max_queue_frames", so.queue.max_frames);
      size("max_message_bytes", so.max_message_bytes);
      size("max_subscriptions", so.max_subscriptions);
      read_ms(*l, "ping_interval_ms", so.ping_interval);
      read_ms(*l, "idle_timeout_ms", so.idle_timeout);
      read_ms(*l, "write_timeout_ms", so.write_timeout);
      std::string policy;
      read(*l, "policy", policy);
      if (!policy.empty()) so.policy = fanout::policy_by_name(policy);
    }
    if (auto* ups = root["upstream"].as_array()) {
      for (auto& node : *ups) {
        auto* t = node.as_table();
        if (!t) throw std::runtime_error("[[upstream]] entries must be tables");
        UpstreamConfig u;
        read(*t, "name", u.name);
        u.options.name = u.name;
        u.options.urls = strings(*t, "urls");
        if (t->contains("url")) u.options.urls = strings(*t, "url");
        if (u.options.urls.empty()) throw std::runtime_error(fmt::format("upstream '{}' needs urls", u.name));
        u.options.subscribe = strings(*t, "subscribe");
        read(*t, "login", u.options.login);
        if (auto* h = (*t)["headers"].as_table())
          for (auto& [k, v] : *h) u.options.headers.emplace_back(std::string(k.str()), v.value_or<std::string>(""));
        std::string hb;
        read(*t, "heartbeat", hb);
        if (!hb.empty()) u.options.heartbeat = heartbeat_by_name(hb);
        read(*t, "heartbeat_text", u.options.heartbeat_text);
        read_ms(*t, "heartbeat_interval_ms", u.options.heartbeat_interval);
        read_ms(*t, "stale_timeout_ms", u.options.stale_timeout);
        read_ms(*t, "connect_timeout_ms", u.options.connect_timeout);
        read_ms(*t, "backoff_initial_ms", u.options.backoff_initial);
        read_ms(*t, "backoff_max_ms", u.options.backoff_max);
        read(*t, "ca_file", u.options.ca_file);
        read(*t, "insecure_skip_verify", u.options.insecure_skip_verify);
        read(*t, "permessage_deflate", u.options.permessage_deflate);
        bool inflate = false;
        read(*t, "inflate_binary", inflate);
        if (inflate) u.options.inflate_binary = fanout::Upstream::Inflate::gzip_or_zlib;
        read(*t, "standby", u.standby);
        if (auto* r = (*t)["route"].as_table()) {
          read(*r, "topic", u.route.topic_template);
          read(*r, "default_topic", u.route.default_topic);
          read(*r, "key", u.route.key_path);
          read(*r, "seq", u.route.seq_path);
          if (r->contains("control_fields")) u.route.control_fields = strings(*r, "control_fields");
          if (r->contains("heartbeat_texts")) u.route.heartbeat_texts = strings(*r, "heartbeat_texts");
        }
        c.upstreams.push_back(std::move(u));
      }
    }
    if (auto* p = root["processor"].as_table()) {
      auto& pc = c.processor;
      read(*p, "enabled", pc.enabled);
      read(*p, "stage", pc.stage);
      if (pc.stage != "bars" && pc.stage != "forward")
        throw std::runtime_error(fmt::format("processor.stage '{}' must be bars or forward", pc.stage));
      read_int(*p, "processor", "workers", 1, 256, pc.options.workers);
      read_int(*p, "processor", "max_queued", 1, k_int_max, pc.options.max_queued);
      read_int(*p, "processor", "max_queued_bytes", 1, k_int_max, pc.options.max_queued_bytes);
      std::string overflow = "drop_oldest";
      read(*p, "overflow", overflow);
      if (overflow == "block")
        pc.options.overflow = fanout::Processor::Overflow::block;
      else if (overflow == "drop_oldest")
        pc.options.overflow = fanout::Processor::Overflow::drop_oldest;
      else
        throw std::runtime_error(fmt::format("processor.overflow '{}' must be drop_oldest or block", overflow));
      std::int64_t bar_ms = pc.bar_interval.count();
      read_int(*p, "processor", "bar_interval_ms", 1, 86'400'000, bar_ms);
      pc.bar_interval = ms(bar_ms);
      read(*p, "bar_source", pc.bar_source);
      read(*p, "bar_topic", pc.bar_topic);
    }
    if (auto* sinks = root["sink"].as_array()) {
      for (auto& node : *sinks) {
        auto* t = node.as_table();
        if (!t) throw std::runtime_error("[[sink]] entries must be tables");
        SinkConfig sc;
        read(*t, "type", sc.type);
        sc.options.name = sc.type;
        read(*t, "name", sc.options.name);
        const std::string section = fmt::format("sink.{}", sc.options.name);
        if (sc.type == "journal") {
          read(*t, "path", sc.journal.path);
          read_int(*t, section, "max_file_bytes", 1, k_int_max, sc.journal.max_file_bytes);
          read_int(*t, section, "max_files", 0, 100'000, sc.journal.max_files);
          read(*t, "fsync", sc.journal.fsync);
        } else if (sc.type == "postgres") {
#if !FANOUT_WITH_POSTGRES
          throw std::runtime_error("sink type postgres: this build has no PostgreSQL support (FANOUT_WITH_POSTGRES)");
#endif
          read(*t, "conninfo", sc.postgres.conninfo);
          read(*t, "table", sc.postgres.table);
          read(*t, "create_table", sc.postgres.create_table);
          read_ms(*t, "statement_timeout_ms", sc.postgres.statement_timeout);
        } else {
          throw std::runtime_error(fmt::format("sink type '{}' must be journal or postgres", sc.type));
        }
        if (t->contains("topics")) sc.options.topics = strings(*t, "topics");
        for (auto& topic : sc.options.topics)
          if (topic.empty()) throw std::runtime_error(fmt::format("{}: empty topic in topics", section));
        read_int(*t, section, "max_queued", 1, k_int_max, sc.options.max_queued);
        read_int(*t, section, "max_queued_bytes", 1, k_int_max, sc.options.max_queued_bytes);
        read_int(*t, section, "max_batch", 1, k_int_max, sc.options.max_batch);
        read_int(*t, section, "max_batch_bytes", 1, k_int_max, sc.options.max_batch_bytes);
        std::string overflow = "drop_newest";
        read(*t, "overflow", overflow);
        if (overflow == "drop_oldest")
          sc.options.overflow = fanout::Sink::Overflow::drop_oldest;
        else if (overflow != "drop_newest")
          throw std::runtime_error(
              fmt::format("{}: overflow '{}' must be drop_newest or drop_oldest", section, overflow));
        read_ms(*t, "retry_initial_ms", sc.options.retry_initial);
        read_ms(*t, "retry_max_ms", sc.options.retry_max);
        read_int(*t, section, "max_attempts", 0, k_int_max, sc.options.max_attempts);
        read_ms(*t, "stop_timeout_ms", sc.options.stop_timeout);
        read(*t, "spill_to", sc.spill_to);
        read(*t, "spill_only", sc.options.spill_only);
        try {  // the writers check their own options, without opening anything
          if (sc.type == "journal") fanout::JournalWriter probe(sc.journal);
#if FANOUT_WITH_POSTGRES
          if (sc.type == "postgres") fanout::PostgresWriter probe(sc.postgres);
#endif
        } catch (const std::invalid_argument& e) {
          throw std::runtime_error(fmt::format("{}: {}", section, e.what()));
        }
        c.sinks.push_back(std::move(sc));
      }
      for (auto& sc : c.sinks) {
        if (sc.spill_to.empty()) continue;
        auto target = std::find_if(c.sinks.begin(), c.sinks.end(),
                                   [&](const SinkConfig& o) { return o.options.name == sc.spill_to; });
        if (target == c.sinks.end() || &*target == &sc || !target->spill_to.empty())
          throw std::runtime_error(fmt::format(
              "sink.{}.spill_to '{}' must name another sink that does not spill itself", sc.options.name, sc.spill_to));
      }
    }
    if (auto* h = root["http"].as_table()) {
      read(*h, "metrics", c.http.metrics);
      read(*h, "metrics_path", c.http.metrics_path);
      if (c.http.metrics_path.empty() || c.http.metrics_path[0] != '/' || c.http.metrics_path == "/" ||
          c.http.metrics_path == "/status.json")
        throw std::runtime_error("http.metrics_path must start with '/' and not be / or /status.json");
      read(*h, "status_page", c.http.status_page);
      read_int(*h, "http", "status_max_topics", 0, 1'000'000, c.http.status_max_topics);
      read_int(*h, "http", "status_history_s", 1, 86'400, c.http.status_history_s);
    }
    std::string role;
    read(root, "role", role);
    if (!role.empty()) c.role = role_by_name(role);
    if (auto* r = root["redis"].as_table()) {
      c.redis.enabled = true;
      std::string url;
      read(*r, "url", url);
      if (!url.empty()) parse_redis_address(url, c.redis);
      read(*r, "host", c.redis.host);
      read_int(*r, "redis", "port", 1, 65535, c.redis.port);
      read(*r, "prefix", c.redis.prefix);
      read_ms(*r, "lease_ttl_ms", c.redis.lease_ttl);
      read_int(*r, "redis", "stream_maxlen", 1, k_int_max, c.redis.stream_maxlen);
      read(*r, "subscribe_all", c.redis.subscribe_all);
    }
    if (auto* s = root["simulator"].as_table()) {
      read(*s, "enabled", c.simulator.enabled);
      read_int(*s, "simulator", "port", 0, 65535, c.simulator.port);
      read(*s, "rate", c.simulator.rate);
      read_int(*s, "simulator", "size", 1, k_int_max, c.simulator.size);
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace

const char* to_string(Role r) noexcept {
  switch (r) {
    case Role::ingest: return "ingest";
    case Role::edge: return "edge";
    case Role::both: break;
  }
  return "both";
}

bool load(int argc, char** argv, Config& c) {
  CLI::App app{
      "fanout-relay: relays upstream WebSocket feeds to many downstream clients by topic.\n"
      "With no upstream configured, it runs the bundled feed simulator and relays that."};
  std::string config_file;
  std::vector<std::string> upstream_urls, subscribe, listen, listen_tls;
  std::string route, policy, path;
  unsigned shards = 0;
  std::size_t max_queue_bytes = 0;
  bool insecure = false, no_standby = true;
  std::string ca_file;
  app.add_option("-c,--config", config_file, "TOML configuration file (see examples/relay/relay.toml)")
      ->check(CLI::ExistingFile);
  app.add_option("-u,--upstream", upstream_urls, "upstream ws:// or wss:// URL (repeat for failover endpoints)");
  app.add_option("-s,--subscribe", subscribe, "message sent to the upstream on every connect (repeatable)");
  app.add_option("-r,--route", route, "topic template over JSON fields, e.g. {arg.channel}:{arg.instId}");
  app.add_option("-l,--listen", listen, "HOST:PORT to serve WebSocket clients on (repeatable; default 127.0.0.1:8080)");
  app.add_option("--listen-tls", listen_tls, "HOST:PORT for wss clients (needs --tls-cert and --tls-key)");
  app.add_option("--tls-cert", c.tls_cert, "PEM certificate chain for --listen-tls");
  app.add_option("--tls-key", c.tls_key, "PEM private key for --listen-tls");
  app.add_option("--path", path, "WebSocket path (default /ws)");
  app.add_option("--shards", shards, "I/O threads (default 1; 0 = one per core)");
  app.add_option("--policy", policy, "backpressure policy: drop_oldest, drop_newest, conflate, disconnect");
  app.add_option("--max-queue-bytes", max_queue_bytes, "queued bytes per client before the policy acts");
  app.add_option("--ca-file", ca_file, "CA bundle to verify wss upstreams with");
  app.add_flag("--insecure", insecure, "do not verify upstream certificates (tests only)");
  app.add_option("--stats-interval", c.stats_interval_s, "seconds between stats lines (0: off)");
  app.add_flag("--sim", c.simulator.enabled, "run the bundled feed simulator even with upstreams configured");
  app.add_option("--sim-port", c.simulator.port, "port of the bundled simulator (default: any free)");
  app.add_option("--sim-rate", c.simulator.rate, "simulator messages per second per instrument");
  (void)no_standby;
  bool no_metrics = false, no_status_page = false;
  app.add_flag("--no-metrics", no_metrics, "do not serve GET /metrics");
  app.add_flag("--no-status-page", no_status_page, "do not serve the status page (GET / and /status.json)");
  std::string role, redis;
  app.add_option("--role", role, "both (default), ingest or edge; ingest and edge need --redis (docs/scaling.md)");
  app.add_option("--redis", redis, "Redis for the bus and ingest leadership: redis://HOST:PORT or HOST:PORT");
  std::int64_t lease_ttl_ms = 0;
  app.add_option("--lease-ttl-ms", lease_ttl_ms, "ingest leadership lease (default 3000)");
  bool check = false;
  app.add_flag("--check", check, "validate the configuration, print a summary and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return false;
  } catch (const CLI::ParseError& e) {
    throw std::runtime_error(e.what());
  }

  if (!config_file.empty()) apply_file(config_file, c);
  // Flags override the file.
  for (auto& l : listen) c.listen.push_back(parse_listen(l, false));
  for (auto& l : listen_tls) c.listen.push_back(parse_listen(l, true));
  if (!path.empty()) c.paths = {path};
  if (no_metrics) c.http.metrics = false;
  if (no_status_page) c.http.status_page = false;
  for (const auto& p : c.paths)
    if ((c.http.metrics && p == c.http.metrics_path) || (c.http.status_page && (p == "/" || p == "/status.json")))
      throw std::runtime_error(fmt::format("WebSocket path {} is also an HTTP endpoint (see [http])", p));
  if (shards) c.shards = shards;
  if (!policy.empty()) c.server.session.policy = fanout::policy_by_name(policy);
  if (max_queue_bytes) c.server.session.queue.max_bytes = max_queue_bytes;
  if (!upstream_urls.empty()) {
    UpstreamConfig u;
    u.name = "upstream";
    u.options.urls = upstream_urls;
    c.upstreams.push_back(std::move(u));
  }
  for (auto& u : c.upstreams) {
    if (!subscribe.empty()) u.options.subscribe = subscribe;
    if (!route.empty()) u.route.topic_template = route;
    if (!ca_file.empty()) u.options.ca_file = ca_file;
    if (insecure) u.options.insecure_skip_verify = true;
  }
  if (!role.empty()) c.role = role_by_name(role);
  if (!redis.empty()) parse_redis_address(redis, c.redis);
  if (lease_ttl_ms) c.redis.lease_ttl = ms(lease_ttl_ms);
  if (c.role != Role::both && !c.redis.enabled)
    throw std::runtime_error(fmt::format("role {} needs a Redis ([redis] or --redis)", to_string(c.role)));
  if (c.redis.enabled && c.redis.lease_ttl < ms(100))
    throw std::runtime_error("redis.lease_ttl_ms must be at least 100");
  if (c.redis.enabled && c.redis.prefix.empty()) throw std::runtime_error("redis.prefix must not be empty");
#if !FANOUT_WITH_REDIS
  if (c.redis.enabled) throw std::runtime_error("this fanout-relay was built without Redis (FANOUT_WITH_REDIS=OFF)");
#endif
  if (c.role == Role::edge && !c.upstreams.empty())
    throw std::runtime_error("role edge takes no upstreams: they are ingested by the ingest nodes");
  // Over Redis the ingest node publishes routed messages to the bus; a [processor] stage there is not
  // wired yet, and silently skipping it would lose the derived topics.
  if (c.redis.enabled && c.processor.enabled)
    throw std::runtime_error("[processor] cannot be combined with [redis] yet: run the processor on a single node");
  if (c.listen.empty()) c.listen.push_back(Listen{});
  for (auto& l : c.listen)
    if (l.tls && (c.tls_cert.empty() || c.tls_key.empty()))
      throw std::runtime_error(fmt::format("TLS listener {}:{} needs tls_cert and tls_key", l.host, l.port));
  if (c.upstreams.empty() && c.role != Role::edge) c.simulator.enabled = true;
  // Routers and policies reject bad templates and names here, before anything starts.
  for (auto& u : c.upstreams) {
    try {
      fanout::Router probe(u.route);
      for (auto& url : u.options.urls) fanout::parse_ws_url(url);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(fmt::format("upstream '{}': {}", u.name, e.what()));
    }
  }
  if (check) {
    fmt::print("configuration ok: {} listener(s), {} upstream(s){}{}, {} sink(s){}\n", c.listen.size(),
               c.upstreams.size(), c.simulator.enabled ? ", bundled simulator" : "",
               c.processor.enabled ? fmt::format(", processor ({})", c.processor.stage) : "", c.sinks.size(),
               c.redis.enabled
                   ? fmt::format(", role {} over redis {}:{}", to_string(c.role), c.redis.host, c.redis.port)
                   : std::string());
    return false;
  }
  return true;
}

}  // namespace relay

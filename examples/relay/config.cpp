#include "config.hpp"

#include <CLI/CLI.hpp>
#include <fanout/redact.hpp>
#include <fanout/version.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <unistd.h>  // gethostname
#include "env.hpp"
#include "nearest.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <limits>
#include <optional>
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

// ---- The file's mapping: one table of keys per TOML table, applied in one loop (apply_keys). ----
//
// A Key names a TOML key and what to do with its value; the readers below make the common ones
// (a plain value, an integer in a range, milliseconds, a list of strings) in one line each. Keys are
// applied in the table's order, not the file's, so e.g. an upstream's `url` wins over its `urls`.
// Every key of a TOML table must be in its Key table: a misspelt key is an error, not a silent default.

/// Where a value sits, for error messages: `section` prefixes range errors ("server.shards must be ..").
struct Where {
  std::string_view section, key;
};

template <class T>
struct Key {
  std::string_view name;
  std::function<void(const toml::node& value, const Where& where, T& out)> apply;
};
template <class T>
using Keys = std::vector<Key<T>>;

// Readers. `field` is a pointer to a member of T or a callable T& -> member&.
template <class V>
V value_of(const toml::node& n, const Where& w) {
  if (auto v = n.value<V>()) return *v;
  throw std::runtime_error(fmt::format("'{}' has the wrong type", w.key));
}
template <class V, class F>
auto value(F field) {
  return [field](const toml::node& n, const Where& w, auto& out) { std::invoke(field, out) = value_of<V>(n, w); };
}
constexpr std::int64_t k_int_max = std::numeric_limits<std::int64_t>::max();
// An integer in lo..hi.
std::int64_t int_in(const toml::node& n, const Where& w, std::int64_t lo, std::int64_t hi) {
  const auto v = value_of<std::int64_t>(n, w);
  if (v < lo || v > hi) throw std::runtime_error(fmt::format("{}.{} must be {}..{}", w.section, w.key, lo, hi));
  return v;
}
template <class F>
auto integer(std::int64_t lo, std::int64_t hi, F field) {
  return [=](const toml::node& n, const Where& w, auto& out) {
    auto& f = std::invoke(field, out);
    f = static_cast<std::remove_reference_t<decltype(f)>>(int_in(n, w, lo, hi));
  };
}
// A size that must be positive (the [limits] wording).
template <class F>
auto positive(F field) {
  return [=](const toml::node& n, const Where& w, auto& out) {
    const auto v = value_of<std::int64_t>(n, w);
    if (v <= 0) throw std::runtime_error(fmt::format("{}.{} must be positive", w.section, w.key));
    std::invoke(field, out) = static_cast<std::size_t>(v);
  };
}
template <class F>
auto millis(F field) {
  return [=](const toml::node& n, const Where& w, auto& out) {
    auto v = n.value<std::int64_t>();
    if (!v) throw std::runtime_error(fmt::format("'{}' must be an integer (milliseconds)", w.key));
    if (*v < 0) throw std::runtime_error(fmt::format("'{}' must not be negative", w.key));
    std::invoke(field, out) = ms(*v);
  };
}
// A rate or bucket size: a number >= 0 (0: no limit where the setting says so).
template <class F>
auto rate(F field) {
  return [=](const toml::node& n, const Where& w, auto& out) {
    double v = 0;
    if (auto i = n.value_exact<std::int64_t>())
      v = static_cast<double>(*i);
    else if (auto d = n.value_exact<double>())
      v = *d;
    else
      throw std::runtime_error(fmt::format("{}.{} must be a number", w.section, w.key));
    if (!(v >= 0)) throw std::runtime_error(fmt::format("{}.{} must not be negative", w.section, w.key));
    std::invoke(field, out) = v;
  };
}
std::vector<std::string> strings_of(const toml::node& n, const Where& w) {
  std::vector<std::string> r;
  if (auto* a = n.as_array()) {
    for (auto& e : *a) {
      auto s = e.value<std::string>();
      if (!s) throw std::runtime_error(fmt::format("'{}' must be a list of strings", w.key));
      r.push_back(*s);
    }
  } else if (auto s = n.value<std::string>()) {
    r.push_back(*s);
  } else {
    throw std::runtime_error(fmt::format("'{}' must be a string or a list of strings", w.key));
  }
  return r;
}
// A string or a list of strings, replacing the default.
template <class F>
auto strings(F field) {
  return [=](const toml::node& n, const Where& w, auto& out) { std::invoke(field, out) = strings_of(n, w); };
}

template <class T>
void check_keys(const toml::table& t, std::string_view where, std::initializer_list<const Keys<T>*> tables) {
  for (auto& entry : t) {
    const auto& k = entry.first;  // not a structured binding: the lambda captures it (clang 14)
    const bool known = std::any_of(tables.begin(), tables.end(), [&](const Keys<T>* keys) {
      return std::any_of(keys->begin(), keys->end(), [&](const Key<T>& key) { return key.name == k.str(); });
    });
    if (!known) {
      std::vector<std::string_view> names;
      for (const Keys<T>* keys : tables)
        for (const Key<T>& key : *keys) names.push_back(key.name);
      const auto hint = nearest_name(k.str(), names);
      throw std::runtime_error(fmt::format("unknown key '{}' in {}{}", k.str(), where,
                                           hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
  }
}
template <class T>
void apply_keys(const toml::table& t, std::string_view section, const Keys<T>& keys, T& out) {
  for (const auto& key : keys)
    if (const toml::node* n = t.get(key.name)) key.apply(*n, Where{section, key.name}, out);
}
template <class T>
void apply_table(const toml::table& t, std::string_view section, std::string_view where, const Keys<T>& keys, T& out) {
  check_keys(t, where, {&keys});
  apply_keys(t, section, keys, out);
}

const toml::table& table_of(const toml::node& n, std::string_view what) {
  if (auto* t = n.as_table()) return *t;
  throw std::runtime_error(fmt::format("{} must be a table", what));
}
// Each entry of an array of tables ([[upstream]], [[sink]]).
template <class F>
void each_table(const toml::node& n, std::string_view name, F&& f) {
  auto* a = n.as_array();
  if (!a) throw std::runtime_error(fmt::format("'{}' must be an array of tables ([[{}]])", name, name));
  for (auto& e : *a) {
    auto* t = e.as_table();
    if (!t) throw std::runtime_error(fmt::format("[[{}]] entries must be tables", name));
    f(*t);
  }
}

const Keys<Config> k_server = {
    {"listen",
     [](const toml::node& n, const Where& w, Config& c) {
       for (auto& l : strings_of(n, w)) c.listen.push_back(parse_listen(l, false));
     }},
    {"listen_tls",
     [](const toml::node& n, const Where& w, Config& c) {
       for (auto& l : strings_of(n, w)) c.listen.push_back(parse_listen(l, true));
     }},
    {"path", strings(&Config::paths)},
    {"shards", integer(0, 64, &Config::shards)},
    {"tls_cert", value<std::string>(&Config::tls_cert)},
    {"tls_key", value<std::string>(&Config::tls_key)},
    {"tls_own_records", value<bool>(&Config::tls_own_records)},
    {"handshake_timeout_ms", millis([](Config& c) -> auto& { return c.server.handshake_timeout; })},
    {"max_request_head_bytes", integer(
                                   1, k_int_max, [](Config& c) -> auto& { return c.server.max_request_head_bytes; })},
    {"stats_interval_s", integer(0, std::numeric_limits<unsigned>::max(), &Config::stats_interval_s)},
    {"drain_ms", millis(&Config::drain)},
    {"drain_delay_ms", millis(&Config::drain_delay)},
    {"envelope_path", strings([](Config& c) -> auto& { return c.server.envelope_paths; })},
    {"topic_endpoints", value<bool>([](Config& c) -> auto& { return c.server.topic_endpoints; })},
    {"http_max_age_s", [](const toml::node& n, const Where& w,
                          Config& c) { c.server.http_max_age = std::chrono::seconds(int_in(n, w, 0, 86400 * 365)); }},
    // Connection limits (docs/security.md, "Connection limits and proxies").
    {"max_connections", integer(
                            0, k_int_max, [](Config& c) -> auto& { return c.server.max_connections; })},
    {"max_connections_per_ip", integer(
                                   0, k_int_max, [](Config& c) -> auto& { return c.server.max_connections_per_ip; })},
    {"handshakes_per_second_per_ip", rate([](Config& c) -> auto& { return c.server.handshakes_per_second_per_ip; })},
    {"handshake_burst_per_ip", rate([](Config& c) -> auto& { return c.server.handshake_burst_per_ip; })},
    {"limit_exempt", strings([](Config& c) -> auto& { return c.server.limit_exempt; })},
    {"exempt_loopback", value<bool>([](Config& c) -> auto& { return c.server.exempt_loopback; })},
    {"trusted_proxies", strings([](Config& c) -> auto& { return c.server.trusted_proxies; })},
    {"proxy_protocol", value<bool>([](Config& c) -> auto& { return c.server.proxy_protocol; })},
    // Reconnect advice (docs/protocol.md): 503 Retry-After and 1013 overload closes; 1012 on drain.
    {"retry_after_ms", millis([](Config& c) -> auto& { return c.server.retry_after; })},
    {"retry_jitter",
     [](const toml::node& n, const Where& w, Config& c) {
       rate([](Config & cc) -> auto& { return cc.server.retry_jitter; })(n, w, c);
       if (c.server.retry_jitter > 1)
         throw std::runtime_error(fmt::format("{}.{} must be in [0, 1]", w.section, w.key));
     }},
    {"drain_retry_after_ms", millis([](Config& c) -> auto& { return c.server.drain_retry_after; })},
    // What all clients' queues hold together, beside [limits]' per-client max_queue_*
    // (docs/tuning.md, "Queue memory budget"); 0: off.
    {"queue_budget_bytes", integer(
                               0, k_int_max, [](Config& c) -> auto& { return c.server.queue_budget_bytes; })},
};

const Keys<fanout::Hub::Options> k_history = {
    {"max_messages", integer(
                         0, k_int_max, [](fanout::Hub::Options& h) -> auto& { return h.history.max_messages; })},
    {"max_bytes", integer(
                      0, k_int_max, [](fanout::Hub::Options& h) -> auto& { return h.history.max_bytes; })},
    {"max_keys", integer(
                     0, k_int_max, [](fanout::Hub::Options& h) -> auto& { return h.history.max_keys; })},
    {"max_topics", integer(1, k_int_max, &fanout::Hub::Options::max_topics)},
    {"max_total_bytes", integer(0, k_int_max, &fanout::Hub::Options::max_history_bytes)},
    {"max_snapshot_bytes",
     integer(
         0, k_int_max, [](fanout::Hub::Options& h) -> auto& { return h.history.max_snapshot_bytes; })},
    // "delta":"fossil" subscriptions: the delta is computed against the key's latest value (above).
    {"delta_max_payload", integer(0, k_int_max, &fanout::Hub::Options::delta_max_payload)},
};

// [topics]: which topics exist, and whether clients may create more (docs/security.md, "Topics").
using ClientTopics = fanout::Hub::ClientTopics;
const Keys<fanout::Hub::Options> k_topics = {
    {"declare", strings(&fanout::Hub::Options::topics)},
    {"client_create", value<bool>([](fanout::Hub::Options& h) -> auto& { return h.client_topics.allow; })},
    {"client_max_topics",
     integer(
         0, k_int_max, [](fanout::Hub::Options& h) -> auto& { return h.client_topics.max_topics; })},
    {"client_max_per_connection",
     integer(
         0, k_int_max, [](fanout::Hub::Options& h) -> auto& { return h.client_topics.max_per_connection; })},
    {"client_max_per_address",
     integer(
         0, k_int_max, [](fanout::Hub::Options& h) -> auto& { return h.client_topics.max_per_address; })},
    // Throttled subscriptions: distinct "interval_ms" per topic per shard (docs/relay.md).
    {"max_intervals_per_topic", integer(1, 1024, &fanout::Hub::Options::max_intervals_per_topic)},
};

using SessionOptions = decltype(fanout::Server::Options{}.session);
const Keys<SessionOptions> k_limits = {
    {"max_queue_bytes", positive([](SessionOptions& s) -> auto& { return s.queue.max_bytes; })},
    {"max_queue_frames", positive([](SessionOptions& s) -> auto& { return s.queue.max_frames; })},
    {"max_message_bytes", positive(&SessionOptions::max_message_bytes)},
    {"max_subscriptions", positive(&SessionOptions::max_subscriptions)},
    {"max_patterns", integer(
                         0, k_int_max, [](SessionOptions& s) -> auto& { return s.max_patterns; })},
    {"max_pattern_topics", positive(&SessionOptions::max_pattern_topics)},
    {"ping_interval_ms", millis(&SessionOptions::ping_interval)},
    {"idle_timeout_ms", millis(&SessionOptions::idle_timeout)},
    {"write_timeout_ms", millis(&SessionOptions::write_timeout)},
    {"close_write_timeout_ms", millis(&SessionOptions::close_write_timeout)},
    // What one client can cause (docs/security.md, "Bounded per client").
    {"control_reserve_bytes",
     integer(
         0, k_int_max, [](SessionOptions& s) -> auto& { return s.queue.control_reserve_bytes; })},
    {"read_pause_bytes", positive(&SessionOptions::read_pause_bytes)},
    {"control_ops_per_second", rate(&SessionOptions::control_ops_per_second)},
    {"control_ops_burst", rate(&SessionOptions::control_ops_burst)},
    {"pings_per_second", rate(&SessionOptions::pings_per_second)},
    {"pings_burst", rate(&SessionOptions::pings_burst)},
    {"subscribe_timeout_ms", millis(&SessionOptions::subscribe_timeout)},
    // Throttled subscriptions ("interval_ms", docs/protocol.md): the intervals clients may ask for; max 0: none.
    {"min_interval_ms", millis(&SessionOptions::min_interval)},
    {"max_interval_ms", millis(&SessionOptions::max_interval)},
    {"max_delta_keys", integer(0, k_int_max, &SessionOptions::max_delta_keys)},
    {"drop_notice_interval_ms", millis(&SessionOptions::drop_notice_interval)},
    // permessage-deflate to clients, compressed once per message (docs/protocol.md, "Compression").
    {"permessage_deflate", value<bool>(&SessionOptions::permessage_deflate)},
    {"deflate_threshold_bytes", integer(0, k_int_max, &SessionOptions::deflate_threshold)},
    {"policy",
     [](const toml::node& n, const Where& w, SessionOptions& s) {
       if (auto name = value_of<std::string>(n, w); !name.empty()) s.policy = fanout::policy_by_name(name);
     }},
};

const Keys<fanout::Router::Options> k_route = {
    {"topic", value<std::string>(&fanout::Router::Options::topic_template)},
    {"default_topic", value<std::string>(&fanout::Router::Options::default_topic)},
    {"key", value<std::string>(&fanout::Router::Options::key_path)},
    {"seq", value<std::string>(&fanout::Router::Options::seq_path)},
    {"control_fields", strings(&fanout::Router::Options::control_fields)},
    {"heartbeat_texts", strings(&fanout::Router::Options::heartbeat_texts)},
};

using UpstreamOptions = fanout::Upstream::Options;
template <class F>
auto upstream_option(F field) {  // a member of UpstreamConfig::options
  return [=](const toml::node& n, const Where& w, UpstreamConfig& u) { field(n, w, u.options); };
}
const Keys<UpstreamConfig> k_upstream = {
    {"name", value<std::string>(&UpstreamConfig::name)},
    {"urls", upstream_option(strings(&UpstreamOptions::urls))},
    {"url", upstream_option(strings(&UpstreamOptions::urls))},
    {"subscribe", upstream_option(strings(&UpstreamOptions::subscribe))},
    {"login", upstream_option(value<std::string>(&UpstreamOptions::login))},
    {"headers",
     [](const toml::node& n, const Where& w, UpstreamConfig& u) {
       for (auto& [k, v] : table_of(n, fmt::format("'{}'", w.key)))
         u.options.headers.emplace_back(std::string(k.str()), v.value_or<std::string>(""));
     }},
    {"heartbeat",
     [](const toml::node& n, const Where& w, UpstreamConfig& u) {
       if (auto hb = value_of<std::string>(n, w); !hb.empty()) u.options.heartbeat = heartbeat_by_name(hb);
     }},
    {"heartbeat_text", upstream_option(value<std::string>(&UpstreamOptions::heartbeat_text))},
    {"heartbeat_interval_ms", upstream_option(millis(&UpstreamOptions::heartbeat_interval))},
    {"stale_timeout_ms", upstream_option(millis(&UpstreamOptions::stale_timeout))},
    {"connect_timeout_ms", upstream_option(millis(&UpstreamOptions::connect_timeout))},
    {"backoff_initial_ms", upstream_option(millis(&UpstreamOptions::backoff_initial))},
    {"backoff_max_ms", upstream_option(millis(&UpstreamOptions::backoff_max))},
    {"ca_file", upstream_option(value<std::string>(&UpstreamOptions::ca_file))},
    {"insecure_skip_verify", upstream_option(value<bool>(&UpstreamOptions::insecure_skip_verify))},
    {"permessage_deflate", upstream_option(value<bool>(&UpstreamOptions::permessage_deflate))},
    {"inflate_binary",
     [](const toml::node& n, const Where& w, UpstreamConfig& u) {
       if (value_of<bool>(n, w)) u.options.inflate_binary = fanout::Upstream::Inflate::gzip_or_zlib;
     }},
    {"standby", value<bool>(&UpstreamConfig::standby)},
    {"route",
     [](const toml::node& n, const Where&, UpstreamConfig& u) {
       apply_table(table_of(n, "[upstream.route]"), "upstream.route", "[upstream.route]", k_route, u.route);
     }},
};

const Keys<ProcessorConfig> k_processor = {
    {"enabled", value<bool>(&ProcessorConfig::enabled)},
    {"stage", value<std::string>(&ProcessorConfig::stage)},
    {"workers", integer(
                    1, 256, [](ProcessorConfig& p) -> auto& { return p.options.workers; })},
    {"max_queued", integer(
                       1, k_int_max, [](ProcessorConfig& p) -> auto& { return p.options.max_queued; })},
    {"max_queued_bytes", integer(
                             1, k_int_max, [](ProcessorConfig& p) -> auto& { return p.options.max_queued_bytes; })},
    {"overflow",
     [](const toml::node& n, const Where& w, ProcessorConfig& p) {
       const auto overflow = value_of<std::string>(n, w);
       if (overflow == "block")
         p.options.overflow = fanout::Processor::Overflow::block;
       else if (overflow == "drop_oldest")
         p.options.overflow = fanout::Processor::Overflow::drop_oldest;
       else
         throw std::runtime_error(fmt::format("processor.overflow '{}' must be drop_oldest or block", overflow));
     }},
    {"bar_interval_ms",
     [](const toml::node& n, const Where& w, ProcessorConfig& p) { p.bar_interval = ms(int_in(n, w, 1, 86'400'000)); }},
    {"bar_source", value<std::string>(&ProcessorConfig::bar_source)},
    {"bar_topic", value<std::string>(&ProcessorConfig::bar_topic)},
};

// A [[sink]]: `type` and `name` first (they pick the type's keys and name the section), then the
// type's own keys, then those every sink has.
const Keys<SinkConfig> k_sink_head = {
    {"type", value<std::string>(&SinkConfig::type)},
    {"name", value<std::string>([](SinkConfig& s) -> auto& { return s.options.name; })},
};
const Keys<SinkConfig> k_journal = {
    {"path", value<std::string>([](SinkConfig& s) -> auto& { return s.journal.path; })},
    {"max_file_bytes", integer(
                           1, k_int_max, [](SinkConfig& s) -> auto& { return s.journal.max_file_bytes; })},
    {"max_files", integer(
                      0, 100'000, [](SinkConfig& s) -> auto& { return s.journal.max_files; })},
    {"fsync", value<bool>([](SinkConfig& s) -> auto& { return s.journal.fsync; })},
};
const Keys<SinkConfig> k_postgres = {
    {"conninfo", value<std::string>([](SinkConfig& s) -> auto& { return s.postgres.conninfo; })},
    {"table", value<std::string>([](SinkConfig& s) -> auto& { return s.postgres.table; })},
    {"create_table", value<bool>([](SinkConfig& s) -> auto& { return s.postgres.create_table; })},
    {"statement_timeout_ms", millis([](SinkConfig& s) -> auto& { return s.postgres.statement_timeout; })},
};
const Keys<SinkConfig> k_sink = {
    {"topics", strings([](SinkConfig& s) -> auto& { return s.options.topics; })},
    {"max_queued", integer(
                       1, k_int_max, [](SinkConfig& s) -> auto& { return s.options.max_queued; })},
    {"max_queued_bytes", integer(
                             1, k_int_max, [](SinkConfig& s) -> auto& { return s.options.max_queued_bytes; })},
    {"max_batch", integer(
                      1, k_int_max, [](SinkConfig& s) -> auto& { return s.options.max_batch; })},
    {"max_batch_bytes", integer(
                            1, k_int_max, [](SinkConfig& s) -> auto& { return s.options.max_batch_bytes; })},
    {"overflow",
     [](const toml::node& n, const Where& w, SinkConfig& s) {
       const auto overflow = value_of<std::string>(n, w);
       if (overflow == "drop_oldest")
         s.options.overflow = fanout::Sink::Overflow::drop_oldest;
       else if (overflow != "drop_newest")
         throw std::runtime_error(
             fmt::format("{}: overflow '{}' must be drop_newest or drop_oldest", w.section, overflow));
     }},
    {"retry_initial_ms", millis([](SinkConfig& s) -> auto& { return s.options.retry_initial; })},
    {"retry_max_ms", millis([](SinkConfig& s) -> auto& { return s.options.retry_max; })},
    {"max_attempts", integer(
                         0, k_int_max, [](SinkConfig& s) -> auto& { return s.options.max_attempts; })},
    {"stop_timeout_ms", millis([](SinkConfig& s) -> auto& { return s.options.stop_timeout; })},
    {"spill_to", value<std::string>(&SinkConfig::spill_to)},
    {"spill_only", value<bool>([](SinkConfig& s) -> auto& { return s.options.spill_only; })},
};

const Keys<HttpConfig> k_http = {
    {"metrics", value<bool>(&HttpConfig::metrics)},
    {"metrics_path", value<std::string>(&HttpConfig::metrics_path)},
    {"status_page", value<bool>(&HttpConfig::status_page)},
    {"status_max_topics", integer(0, 1'000'000, &HttpConfig::status_max_topics)},
    {"status_history_s", integer(1, 86'400, &HttpConfig::status_history_s)},
};

const Keys<RedisConfig> k_redis = {
    {"url",
     [](const toml::node& n, const Where& w, RedisConfig& r) {
       if (auto url = value_of<std::string>(n, w); !url.empty()) parse_redis_address(url, r);
     }},
    {"host", value<std::string>(&RedisConfig::host)},
    {"port", integer(1, 65535, &RedisConfig::port)},
    {"prefix", value<std::string>(&RedisConfig::prefix)},
    {"lease_ttl_ms", millis(&RedisConfig::lease_ttl)},
    {"stream_maxlen", integer(1, k_int_max, &RedisConfig::stream_maxlen)},
    {"subscribe_all", value<bool>(&RedisConfig::subscribe_all)},
    {"gateway", value<bool>(&RedisConfig::gateway)},
    {"presence_ttl_ms", millis(&RedisConfig::presence_ttl)},
    {"command_stream_maxlen", integer(1, k_int_max, &RedisConfig::command_stream_maxlen)},
    {"max_command_bytes", integer(64, 64 << 20, &RedisConfig::max_command_bytes)},
    {"max_command_age_ms", millis(&RedisConfig::max_command_age)},
};

// [auth]: the verifier's options here, the rest straight into the servers' fanout::Auth.
using AuthOptions = fanout::Auth;
struct AuthTarget {
  AuthConfig& config;
  fanout::Auth& server;
};
template <class F>
auto to_verifier(F field) {
  return [=](const toml::node& n, const Where& w, AuthTarget& t) { field(n, w, t.config.verifier); };
}
template <class F>
auto to_server(F field) {
  return [=](const toml::node& n, const Where& w, AuthTarget& t) { field(n, w, t.server); };
}
using VerifierOptions = fanout::TokenVerifier::Options;
fanout::Access access_of(const toml::node& n, const Where& w) {
  const auto name = value_of<std::string>(n, w);
  if (auto a = fanout::access_by_name(name)) return *a;
  throw std::runtime_error(
      fmt::format("{}.{} '{}' must be public, authenticated, user, claim, token or deny", w.section, w.key, name));
}
const Keys<AuthTarget> k_auth = {
    {"key_file", to_verifier(value<std::string>(&VerifierOptions::key_file))},
    {"leeway_s", [](const toml::node& n, const Where& w,
                    AuthTarget& t) { t.config.verifier.leeway = std::chrono::seconds(int_in(n, w, 0, 3600)); }},
    {"require_exp", to_verifier(value<bool>(&VerifierOptions::require_exp))},
    {"issuer", to_verifier(value<std::string>(&VerifierOptions::issuer))},
    {"audience", to_verifier(value<std::string>(&VerifierOptions::audience))},
    {"max_token_bytes", to_verifier(integer(16, 1 << 20, &VerifierOptions::max_token_bytes))},
    {"allow_anonymous", to_server(value<bool>(&AuthOptions::allow_anonymous))},
    {"query_token", to_server(value<bool>(&AuthOptions::query_token))},
    {"auth_timeout_ms", to_server(millis(&AuthOptions::auth_timeout))},
    {"expiry_warning_ms", to_server(millis(&AuthOptions::expiry_warning))},
    {"allowed_origins", to_server(strings(&AuthOptions::allowed_origins))},
    {"require_origin", to_server(value<bool>(&AuthOptions::require_origin))},
    {"default_access",
     [](const toml::node& n, const Where& w, AuthTarget& t) { t.config.default_access = access_of(n, w); }},
};
const Keys<fanout::AccessRules::Rule> k_acl = {
    {"pattern", value<std::string>(&fanout::AccessRules::Rule::pattern)},
    {"access", [](const toml::node& n, const Where& w, fanout::AccessRules::Rule& r) { r.access = access_of(n, w); }},
};

const Keys<SimulatorConfig> k_simulator = {
    {"enabled", value<bool>(&SimulatorConfig::enabled)},
    {"port", integer(0, 65535, &SimulatorConfig::port)},
    {"rate", value<double>(&SimulatorConfig::rate)},
    {"size", integer(1, k_int_max, &SimulatorConfig::size)},
};

UpstreamConfig read_upstream(const toml::table& t) {
  UpstreamConfig u;
  apply_table(t, "upstream", "[[upstream]]", k_upstream, u);
  u.options.name = u.name;
  if (u.options.urls.empty()) throw std::runtime_error(fmt::format("upstream '{}' needs urls", u.name));
  return u;
}

SinkConfig read_sink(const toml::table& t) {
  SinkConfig sc;
  apply_keys(t, "sink", k_sink_head, sc);
  if (!t.contains("name")) sc.options.name = sc.type;
  const std::string section = fmt::format("sink.{}", sc.options.name);
  const Keys<SinkConfig>* own = nullptr;
  if (sc.type == "journal") {
    own = &k_journal;
  } else if (sc.type == "postgres") {
#if !FANOUT_WITH_POSTGRES
    throw std::runtime_error("sink type postgres: this build has no PostgreSQL support (FANOUT_WITH_POSTGRES)");
#endif
    own = &k_postgres;
  } else {
    throw std::runtime_error(fmt::format("sink type '{}' must be journal or postgres", sc.type));
  }
  check_keys(t, fmt::format("[[sink]] '{}' (a {} sink)", sc.options.name, sc.type), {&k_sink_head, own, &k_sink});
  apply_keys(t, section, *own, sc);
  apply_keys(t, section, k_sink, sc);
  for (auto& topic : sc.options.topics)
    if (topic.empty()) throw std::runtime_error(fmt::format("{}: empty topic in topics", section));
  try {  // the writers check their own options, without opening anything
    if (sc.type == "journal") fanout::JournalWriter probe(sc.journal);
#if FANOUT_WITH_POSTGRES
    if (sc.type == "postgres") fanout::PostgresWriter probe(sc.postgres);
#endif
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", section, e.what()));
  }
  return sc;
}

void check_spills(const std::vector<SinkConfig>& sinks) {
  for (auto& sc : sinks) {
    if (sc.spill_to.empty()) continue;
    auto target =
        std::find_if(sinks.begin(), sinks.end(), [&](const SinkConfig& o) { return o.options.name == sc.spill_to; });
    if (target == sinks.end() || &*target == &sc || !target->spill_to.empty())
      throw std::runtime_error(fmt::format("sink.{}.spill_to '{}' must name another sink that does not spill itself",
                                           sc.options.name, sc.spill_to));
  }
}

/// An admin token from a file (its first line, whitespace trimmed), so it stays out of argv and the
/// configuration file.
std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string token(4096, '\0');  // a token is a line, not a file to slurp (/dev/zero)
  if (!in) throw std::runtime_error(fmt::format("cannot read admin token file {}", path));
  in.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<std::size_t>(in.gcount()));
  token.resize(std::min(token.find('\n'), token.size()));
  const auto space = [](unsigned char ch) { return std::isspace(ch) != 0; };
  token.erase(token.begin(), std::find_if_not(token.begin(), token.end(), space));
  token.erase(std::find_if_not(token.rbegin(), token.rend(), space).base(), token.end());
  return token;
}

void set_admin_listen(const std::string& s, AdminConfig& a) {
  if (s.empty() || s == "off")
    a.listen.reset();
  else
    a.listen = parse_listen(s, false);
}

const Keys<AdminConfig> k_admin = {
    {"listen",
     [](const toml::node& n, const Where& w, AdminConfig& a) { set_admin_listen(value_of<std::string>(n, w), a); }},
    {"token", value<std::string>(&AdminConfig::token)},
    {"token_file", [](const toml::node& n, const Where& w,
                      AdminConfig& a) { a.token = read_token_file(value_of<std::string>(n, w)); }},
    {"public", value<bool>(&AdminConfig::on_public)},
    {"topic_list", value<bool>(&AdminConfig::topic_list)},
    {"topics_refresh_ms", millis([](AdminConfig& a) -> auto& { return a.topics.refresh; })},
    {"topics_max_limit", positive([](AdminConfig& a) -> auto& { return a.topics.max_limit; })},
    {"topics_default_limit", positive([](AdminConfig& a) -> auto& { return a.topics.default_limit; })},
    {"topics_max_page_bytes", positive([](AdminConfig& a) -> auto& { return a.topics.max_page_bytes; })},
};

// [proxy]: the backend proxy (backend_proxy.hpp). `url` is required; the rest have defaults.
bool header_name_ok(std::string_view h) {  // an HTTP token
  return !h.empty() && std::all_of(h.begin(), h.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}
const Keys<ProxyConfig> k_proxy = {
    {"url",
     [](const toml::node& n, const Where& w, ProxyConfig& p) {
       p.url = value_of<std::string>(n, w);
       if (!(p.url.starts_with("http://") || p.url.starts_with("https://")) || p.url.size() <= 8)
         throw std::runtime_error("proxy.url must be an http:// or https:// URL");
       while (p.url.ends_with('/')) p.url.pop_back();
     }},
    {"events",
     [](const toml::node& n, const Where& w, ProxyConfig& p) {
       p.connect = p.message = p.rpc = p.disconnect = false;
       for (const auto& e : strings_of(n, w)) {
         if (e == "connect")
           p.connect = true;
         else if (e == "message")
           p.message = true;
         else if (e == "rpc")
           p.rpc = true;
         else if (e == "disconnect")
           p.disconnect = true;
         else
           throw std::runtime_error(
               fmt::format("proxy.events: '{}' must be one of connect, message, rpc, disconnect", e));
       }
     }},
    {"timeout_ms",
     [](const toml::node& n, const Where& w, ProxyConfig& p) { p.timeout = ms(int_in(n, w, 1, 60'000)); }},
    {"max_in_flight", integer(1, 256, &ProxyConfig::max_in_flight)},
    {"max_queue", integer(1, 1'000'000, &ProxyConfig::max_queue)},
    {"max_queue_bytes", integer(1, k_int_max, &ProxyConfig::max_queue_bytes)},
    {"max_response_bytes", integer(1, 64 << 20, &ProxyConfig::max_response_bytes)},
    {"headers",
     [](const toml::node& n, const Where& w, ProxyConfig& p) {
       p.headers = strings_of(n, w);
       for (const auto& h : p.headers)
         if (!header_name_ok(h)) throw std::runtime_error(fmt::format("proxy.headers: '{}' is not a header name", h));
     }},
};

const Keys<ApiConfig> k_api = {
    {"key_file", value<std::string>(&ApiConfig::key_file)},
    {"max_body_bytes", integer(1, 64 << 20, &ApiConfig::max_body_bytes)},
    {"max_batch", integer(1, 100'000, &ApiConfig::max_batch)},
};

const Keys<GatewayConfig> k_gateway = {
    {"node", value<std::string>(&GatewayConfig::node)},
    {"max_connections_per_user", integer(0, 1'000'000, &GatewayConfig::max_connections_per_user)},
    {"max_list", integer(1, 1'000'000, &GatewayConfig::max_list)},
};

/// This node's name in client ids: [gateway] node, else the host name made valid, else "n1".
std::string resolve_node(const std::string& configured) {
  const auto valid = [](unsigned char ch) { return std::isalnum(ch) || ch == '_' || ch == '.'; };
  if (!configured.empty()) {
    if (configured.size() > 32 || !std::all_of(configured.begin(), configured.end(), valid))
      throw std::runtime_error(fmt::format("gateway.node '{}' must be 1-32 of [A-Za-z0-9_.]", configured));
    return configured;
  }
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "n1";
  std::string node(host, std::min<std::size_t>(std::strlen(host), 32));
  std::replace_if(
      node.begin(), node.end(), [&](unsigned char ch) { return !valid(ch); }, '_');
  return node;
}

// [log] (log.hpp): --log-level and --log-format override it.
const Keys<LogConfig> k_log = {
    {"level",
     [](const toml::node& n, const Where& w, LogConfig& l) {
       const auto name = value_of<std::string>(n, w);
       if (auto level = log_level_by_name(name)) return void(l.level = *level);
       throw std::runtime_error(fmt::format("log.level '{}' must be error, warn, info or debug", name));
     }},
    {"format",
     [](const toml::node& n, const Where& w, LogConfig& l) {
       const auto name = value_of<std::string>(n, w);
       if (auto format = log_format_by_name(name)) return void(l.format = *format);
       throw std::runtime_error(fmt::format("log.format '{}' must be text or json", name));
     }},
};

// The top level: its tables and `role`, in the order they are applied.
template <class T, class F>
auto section(std::string_view name, const Keys<T>& keys, F part) {
  return [name, &keys, part](const toml::node& n, const Where&, Config& c) {
    apply_table(table_of(n, fmt::format("[{}]", name)), name, fmt::format("[{}]", name), keys, std::invoke(part, c));
  };
}
const Keys<Config> k_root = {
    {"server", section("server", k_server, [](Config& c) -> Config& { return c; })},
    {"history", section("history", k_history, &Config::hub)},
    {"topics", section("topics", k_topics, &Config::hub)},
    {"limits", section(
                   "limits", k_limits, [](Config& c) -> auto& { return c.server.session; })},
    {"upstream",
     [](const toml::node& n, const Where&, Config& c) {
       each_table(n, "upstream", [&](const toml::table& t) { c.upstreams.push_back(read_upstream(t)); });
     }},
    {"processor",
     [](const toml::node& n, const Where& w, Config& c) {
       section("processor", k_processor, &Config::processor)(n, w, c);
       if (c.processor.stage != "bars" && c.processor.stage != "forward")
         throw std::runtime_error(fmt::format("processor.stage '{}' must be bars or forward", c.processor.stage));
     }},
    {"sink",
     [](const toml::node& n, const Where&, Config& c) {
       each_table(n, "sink", [&](const toml::table& t) { c.sinks.push_back(read_sink(t)); });
       check_spills(c.sinks);
     }},
    {"http",
     [](const toml::node& n, const Where& w, Config& c) {
       section("http", k_http, &Config::http)(n, w, c);
       const auto& p = c.http.metrics_path;
       if (p.empty() || p[0] != '/' || p == "/" || p == "/status.json")
         throw std::runtime_error("http.metrics_path must start with '/' and not be / or /status.json");
     }},
    {"role",
     [](const toml::node& n, const Where& w, Config& c) {
       if (auto role = value_of<std::string>(n, w); !role.empty()) c.role = role_by_name(role);
     }},
    {"redis",
     [](const toml::node& n, const Where& w, Config& c) {
       c.redis.enabled = true;
       section("redis", k_redis, &Config::redis)(n, w, c);
     }},
    {"simulator", section("simulator", k_simulator, &Config::simulator)},
    {"auth",
     [](const toml::node& n, const Where&, Config& c) {
       AuthTarget t{c.auth, c.server.auth};
       apply_table(table_of(n, "[auth]"), "auth", "[auth]", k_auth, t);
     }},
    {"acl",
     [](const toml::node& n, const Where&, Config& c) {
       each_table(n, "acl", [&](const toml::table& t) {
         fanout::AccessRules::Rule r;
         apply_table(t, "acl", "[[acl]]", k_acl, r);
         if (!t.contains("pattern") || !t.contains("access"))
           throw std::runtime_error("every [[acl]] needs a pattern and an access");
         c.auth.acl.push_back(std::move(r));
       });
     }},
    {"admin", section("admin", k_admin, &Config::admin)},
    {"proxy",
     [](const toml::node& n, const Where& w, Config& c) {
       c.proxy.enabled = true;
       section("proxy", k_proxy, &Config::proxy)(n, w, c);
       if (c.proxy.url.empty()) throw std::runtime_error("[proxy] needs a url");
     }},
    {"api", section("api", k_api, &Config::api)},
    {"gateway", section("gateway", k_gateway, &Config::gateway)},
    {"log", section("log", k_log, &Config::log)},
};

}  // namespace

/// API keys from a file: one a line, blank lines and # comments skipped, whitespace trimmed. Kept
/// out of argv and the configuration file, like the admin token.
std::vector<std::string> read_api_keys(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read API key file {}", path));
  std::vector<std::string> keys;
  std::string line;
  const auto space = [](unsigned char ch) { return std::isspace(ch) != 0; };
  for (std::size_t n = 0; std::getline(in, line); ++n) {
    if (n >= 1000 || keys.size() >= 64) throw std::runtime_error(fmt::format("API key file {}: too long", path));
    line.erase(line.begin(), std::find_if_not(line.begin(), line.end(), space));
    line.erase(std::find_if_not(line.rbegin(), line.rend(), space).base(), line.end());
    if (line.empty() || line.front() == '#') continue;
    if (line.size() < 16 || line.size() > 512)
      throw std::runtime_error(fmt::format("API key file {}, line {}: a key has 16 to 512 characters", path, n + 1));
    keys.push_back(line);
  }
  if (keys.empty()) throw std::runtime_error(fmt::format("API key file {} holds no key", path));
  return keys;
}

std::vector<SettableKey> settable_keys() {
  std::vector<SettableKey> r{{"", "role"}};
  auto add = [&r](std::string_view section, const auto& keys) {
    for (const auto& k : keys) r.push_back({section, k.name});
  };
  add("server", k_server);
  add("history", k_history);
  add("topics", k_topics);
  add("limits", k_limits);
  add("processor", k_processor);
  add("http", k_http);
  add("redis", k_redis);
  add("simulator", k_simulator);
  add("auth", k_auth);
  add("admin", k_admin);
  add("log", k_log);
  add("api", k_api);
  add("gateway", k_gateway);
  add("proxy", k_proxy);
  return r;
}

void apply_toml(std::string_view text, const std::string& path, Config& c) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(
        fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column, e.description()));
  }
  try {
    apply_table(root, "", "the top level", k_root, c);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

namespace {
void apply_file(const std::string& path, Config& c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read", path));
  std::ostringstream text;
  text << in.rdbuf();
  apply_toml(text.str(), path, c);
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

std::string version_line() {
  // The features decide which config keys work ([redis], postgres sinks): an operator checks here.
  std::string features = "ws";
#if FANOUT_WITH_TLS
  features += " tls";
#endif
#if FANOUT_WITH_REDIS
  features += " redis";
#endif
#if FANOUT_WITH_POSTGRES
  features += " postgres";
#endif
#if FANOUT_RELAY_WITH_PROXY
  features += " proxy";
#endif
  return fmt::format("fanout-relay {} (features: {})", FANOUT_VERSION_STRING, features);
}

namespace {
// " (did you mean '--listen'?)" for the first argument that looks like a flag and is none, or "".
std::string flag_hint(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> flags;
  for (const CLI::Option* o : app.get_options())
    for (const auto& name : o->get_lnames()) flags.push_back("--" + name);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with("--")) continue;
    arg = arg.substr(0, arg.find('='));
    if (std::find(flags.begin(), flags.end(), arg) != flags.end()) continue;
    const auto hint = nearest_name(arg, flags);
    return hint.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", hint);
  }
  return {};
}
}  // namespace

namespace {

// ---- The command line's mapping: one row per flag, applied in one loop (like the file's Keys). ----
//
// A Flag names its CLI11 option, its help line (--help is made from this table) and what it sets.
// Flags override the file and the environment: every row is applied after both, in the table's
// order (so --upstream's upstream gets --subscribe, --route, ...), except the two the file needs.

struct Flag {
  enum class Arity : std::uint8_t { toggle, one, many };  // no value; one value (the last given); repeatable
  std::string_view names;                                 // CLI11 names: "-u,--upstream"
  std::string_view help;
  Arity arity = Arity::one;
  std::function<void(const std::vector<std::string>& values, Config& c)> apply;  // when given
  std::optional<CLI::Validator> check{};  // on each value, by CLI11 (its message names the flag)
  bool before_file = false;               // --config and --check: what the file's reading needs
};

// A number flag's check, and what --help shows for its value (in place of CLI11's "TEXT:...").
CLI::Validator numeric(CLI::Validator v, std::string shown) { return v.description(std::move(shown)).name("numeric"); }
// A whole number of type N, not negative.
template <class N>
CLI::Validator at_least_zero() {
  return numeric(CLI::Range(N{0}, std::numeric_limits<N>::max()), "N>=0");
}
template <class N>
N number_of(const std::string& s) {  // already checked by the row's validator
  N v{};
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

const std::vector<Flag>& flags() {
  using A = Flag::Arity;
  using V = std::vector<std::string>;
  static const std::vector<Flag> table{
      {"-c,--config", "TOML configuration file (see examples/relay/relay.toml)", A::one,
       [](const V& v, Config& c) { c.config_file = v.back(); }, CLI::ExistingFile, true},
      {"--check",
       "validate the configuration as start would (listen addresses, TLS files, URLs, paths), exit 0 or 1",
       A::toggle,
       [](const V&, Config& c) { c.check = true; },
       {},
       true},
      {"-u,--upstream", "upstream ws:// or wss:// URL (repeat for failover endpoints)", A::many,
       [](const V& v, Config& c) {
         UpstreamConfig u;
         u.name = "upstream";
         u.options.urls = v;
         c.upstreams.push_back(std::move(u));
       }},
      {"-s,--subscribe", "message sent to the upstream on every connect (repeatable)", A::many,
       [](const V& v, Config& c) {
         for (auto& u : c.upstreams) u.options.subscribe = v;
       }},
      {"-r,--route", "topic template over JSON fields, e.g. {arg.channel}:{arg.instId}", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty())
           for (auto& u : c.upstreams) u.route.topic_template = v.back();
       }},
      {"--ca-file", "CA bundle to verify wss upstreams with", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty())
           for (auto& u : c.upstreams) u.options.ca_file = v.back();
       }},
      {"--insecure", "do not verify upstream certificates (tests only)", A::toggle,
       [](const V&, Config& c) {
         for (auto& u : c.upstreams) u.options.insecure_skip_verify = true;
       }},
      // Listen addresses given here replace those of their kind (plain or TLS).
      {"-l,--listen", "HOST:PORT to serve WebSocket clients on (repeatable; default 127.0.0.1:8080)", A::many,
       [](const V& v, Config& c) {
         std::erase_if(c.listen, [](const Listen& l) { return !l.tls; });
         for (auto& l : v) c.listen.push_back(parse_listen(l, false));
       }},
      {"--listen-tls", "HOST:PORT for wss clients (needs --tls-cert and --tls-key)", A::many,
       [](const V& v, Config& c) {
         std::erase_if(c.listen, [](const Listen& l) { return l.tls; });
         for (auto& l : v) c.listen.push_back(parse_listen(l, true));
       }},
      {"--tls-cert", "PEM certificate chain for --listen-tls", A::one,
       [](const V& v, Config& c) { c.tls_cert = v.back(); }},
      {"--tls-key", "PEM private key for --listen-tls", A::one, [](const V& v, Config& c) { c.tls_key = v.back(); }},
      {"--path", "WebSocket path (default /ws)", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty()) c.paths = {v.back()};
       }},
      {"--shards", "I/O threads (default 1; 0 = one per core, at most 64)", A::one,
       [](const V& v, Config& c) { c.shards = number_of<unsigned>(v.back()); },  // 0 too: one per core
       numeric(CLI::Range(0u, 64u), "0..64")},
      {"--policy", "backpressure policy: drop_oldest, drop_newest, conflate, disconnect", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty()) c.server.session.policy = fanout::policy_by_name(v.back());
       }},
      {"--max-queue-bytes", "queued bytes per client before the policy acts", A::one,
       [](const V& v, Config& c) {
         if (const auto n = number_of<std::size_t>(v.back())) c.server.session.queue.max_bytes = n;
       },
       at_least_zero<std::size_t>()},
      {"--stats-interval", "seconds between stats lines (0: off)", A::one,
       [](const V& v, Config& c) { c.stats_interval_s = number_of<unsigned>(v.back()); }, at_least_zero<unsigned>()},
      {"--sim", "run the bundled feed simulator even with upstreams configured", A::toggle,
       [](const V&, Config& c) { c.simulator.enabled = true; }},
      {"--sim-port", "port of the bundled simulator (default: any free)", A::one,
       [](const V& v, Config& c) { c.simulator.port = number_of<std::uint16_t>(v.back()); },
       numeric(CLI::Range(0, 65535), "PORT")},
      {"--sim-rate", "simulator messages per second per instrument", A::one,
       [](const V& v, Config& c) { c.simulator.rate = std::stod(v.back()); }, numeric(CLI::Number, "NUMBER")},
      {"--admin-listen", "HOST:PORT for metrics, the status page and /topics (default 127.0.0.1:8081; off: none)",
       A::one, [](const V& v, Config& c) { set_admin_listen(v.back(), c.admin); }},
      {"--admin-token-file", "file whose first line is the admin bearer token (docs/security.md)", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty()) c.admin.token = read_token_file(v.back());
       }},
      {"--api-key-file",
       "file of server API keys, one a line: turns on /api/* on the admin listener (docs/server-api.md)", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty()) c.api.key_file = v.back();
       }},
      {"--node", "this node's name in client ids (default: the host name; with --redis: host.pid)", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty()) c.gateway.node = v.back();
       }},
      {"--no-metrics", "do not serve GET /metrics", A::toggle, [](const V&, Config& c) { c.http.metrics = false; }},
      {"--no-status-page", "do not serve the status page (GET / and /status.json)", A::toggle,
       [](const V&, Config& c) { c.http.status_page = false; }},
      {"--role", "both (default), ingest or edge; ingest and edge need --redis (docs/scaling.md)", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty()) c.role = role_by_name(v.back());
       }},
      {"--redis", "Redis for the bus and ingest leadership: redis://HOST:PORT or HOST:PORT", A::one,
       [](const V& v, Config& c) {
         if (!v.back().empty()) parse_redis_address(v.back(), c.redis);
       }},
      {"--lease-ttl-ms", "ingest leadership lease (default 3000)", A::one,
       [](const V& v, Config& c) {
         if (const auto n = number_of<std::int64_t>(v.back())) c.redis.lease_ttl = ms(n);
       },
       at_least_zero<std::int64_t>()},
      {"--presence-ttl-ms", "a dead node's users go offline on the others after this (default 5000; docs/cluster.md)",
       A::one,
       [](const V& v, Config& c) {
         if (const auto n = number_of<std::int64_t>(v.back())) c.redis.presence_ttl = ms(n);
       },
       at_least_zero<std::int64_t>()},
      {"--topic", "declare a topic clients may subscribe to before its first message (repeatable)", A::many,
       [](const V& v, Config& c) {
         for (auto& t : v) c.hub.topics.push_back(t);
       }},
      {"--client-topics",
       "let clients create topics by subscribing (limits: [topics]; default: unknown topics are refused)", A::toggle,
       [](const V&, Config& c) { c.hub.client_topics.allow = true; }},
      {"--log-level", "error, warn, info (default) or debug ([log] level)", A::one,
       [](const V& v, Config& c) {
         if (v.back().empty()) return;
         const auto level = log_level_by_name(v.back());
         if (!level)
           throw std::runtime_error(fmt::format("--log-level '{}' must be error, warn, info or debug", v.back()));
         c.log.level = *level;
       }},
      {"--log-format", "text (default) or json: one object per line ([log] format)", A::one,
       [](const V& v, Config& c) {
         if (v.back().empty()) return;
         const auto format = log_format_by_name(v.back());
         if (!format) throw std::runtime_error(fmt::format("--log-format '{}' must be text or json", v.back()));
         c.log.format = *format;
       }},
  };
  return table;
}

/// The flags given on the command line: each row's values, in the order of flags().
struct GivenFlags {
  std::vector<std::vector<std::string>> values;
  std::vector<bool> given;

  void apply(Config& c, bool before_file) const {
    const auto& table = flags();
    for (std::size_t i = 0; i < table.size(); ++i)
      if (given[i] && table[i].before_file == before_file) table[i].apply(values[i], c);
  }
};
}  // namespace

bool load(int argc, char** argv, const std::vector<std::string>& env, Config& c) {
  CLI::App app{
      "fanout-relay: relays upstream WebSocket feeds to many downstream clients by topic.\n"
      "With no upstream configured, it runs the bundled feed simulator and relays that."};
  const auto& table = flags();
  GivenFlags given{std::vector<std::vector<std::string>>(table.size()), std::vector<bool>(table.size())};
  std::vector<CLI::Option*> options;
  for (std::size_t i = 0; i < table.size(); ++i) {
    const Flag& f = table[i];
    auto& values = given.values[i];
    CLI::Option* o = f.arity == Flag::Arity::toggle
                         ? app.add_flag(std::string(f.names))->description(std::string(f.help))
                         : app.add_option(std::string(f.names), values, std::string(f.help));
    if (f.arity == Flag::Arity::one) o->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    if (f.check && f.check->get_name() == "numeric") {  // shown as its own type, e.g. "--shards 0..64"
      CLI::Validator v = *f.check;
      o->type_name(v.get_description());
      o->check(v.description(""));
    } else if (f.check) {
      o->check(*f.check);
    }
    options.push_back(o);
  }
  app.set_version_flag("--version", version_line(), "print the version and the features built in, and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return false;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e);
    return false;
  } catch (const CLI::ParseError& e) {
    throw std::runtime_error(std::string(e.what()) + flag_hint(app, argc, argv));
  }
  for (std::size_t i = 0; i < table.size(); ++i) given.given[i] = options[i]->count() > 0;

  given.apply(c, true);  // --config, --check
  if (!c.config_file.empty()) apply_file(c.config_file, c);
  apply_env(env, c);      // the environment overrides the file (env.hpp)
  given.apply(c, false);  // flags override both
  if (!c.admin.token.empty() && c.admin.token.size() < 16)
    throw std::runtime_error("admin token must be at least 16 characters");
  if (c.admin.on_public && c.admin.token.empty())
    throw std::runtime_error("admin.public serves metrics and status to the client listeners: it needs admin.token");
  if (!c.api.key_file.empty()) c.api.keys = read_api_keys(c.api.key_file);
  if (c.api.enabled() && !c.admin.listen)
    throw std::runtime_error("[api] is served on the admin listener: it needs [admin] listen (not off)");
  // Several edges may share a host (SO_REUSEPORT, docs/scaling.md) and node names must differ in a
  // cluster (docs/cluster.md): there the default name is the host name and the pid.
  const bool cluster_default = c.gateway.node.empty() && c.redis.enabled && c.redis.gateway;
  c.gateway.node = resolve_node(c.gateway.node);
  if (cluster_default) c.gateway.node = fmt::format("{}.{}", c.gateway.node.substr(0, 24), ::getpid());
  if (c.admin.topics.default_limit > c.admin.topics.max_limit)
    throw std::runtime_error("admin.topics_default_limit must not exceed admin.topics_max_limit");
  for (const auto& p : c.paths)
    if (c.admin.on_public &&
        ((c.http.metrics && p == c.http.metrics_path) || (c.http.status_page && (p == "/" || p == "/status.json"))))
      throw std::runtime_error(fmt::format("WebSocket path {} is also an HTTP endpoint (see [http])", p));
  for (const auto& t : c.hub.topics)  // the Hub's rule (valid_topic), checked before anything starts
    if (t.empty() || t.size() > c.hub.max_topic_bytes ||
        std::any_of(t.begin(), t.end(), [](unsigned char ch) { return ch <= 0x20 || ch == 0x7F || ch == ','; }))
      throw std::runtime_error(fmt::format("topics.declare: invalid topic name '{}'", t));
  if (c.hub.topics.size() > c.hub.max_topics)
    throw std::runtime_error("topics.declare: more topics than history.max_topics");
  if (c.server.session.max_interval.count() != 0 && c.server.session.min_interval > c.server.session.max_interval)
    throw std::runtime_error("limits.min_interval_ms must not be above limits.max_interval_ms");
  if (c.server.session.max_interval.count() != 0 && c.server.session.min_interval.count() == 0)
    throw std::runtime_error("limits.min_interval_ms must be at least 1 (throttling off: max_interval_ms = 0)");
  if (c.role != Role::both && !c.redis.enabled)
    throw std::runtime_error(fmt::format("role {} needs a Redis ([redis] or --redis)", to_string(c.role)));
  if (c.redis.enabled && c.redis.lease_ttl < ms(100))
    throw std::runtime_error("redis.lease_ttl_ms must be at least 100");
  if (c.redis.enabled && c.redis.presence_ttl < ms(100))
    throw std::runtime_error("redis.presence_ttl_ms must be at least 100");
  if (c.redis.enabled && c.redis.prefix.empty()) throw std::runtime_error("redis.prefix must not be empty");
#if !FANOUT_WITH_REDIS
  if (c.redis.enabled) throw std::runtime_error("this fanout-relay was built without Redis (FANOUT_WITH_REDIS=OFF)");
#endif
  // Sinks record what this node's hub publishes (its publish observer); an ingest node has no hub traffic.
  if (c.role == Role::ingest && !c.sinks.empty())
    throw std::runtime_error(
        "[[sink]] records what the hub publishes, and role ingest publishes only into Redis: "
        "put sinks on an edge (or role both)");
  if (c.role == Role::edge && !c.upstreams.empty())
    throw std::runtime_error("role edge takes no upstreams: they are ingested by the ingest nodes");
  // Over Redis the ingest node publishes routed messages to the bus; a [processor] stage there is not
  // wired yet, and silently skipping it would lose the derived topics.
  if (c.redis.enabled && c.processor.enabled)
    throw std::runtime_error("[processor] cannot be combined with [redis] yet: run the processor on a single node");
#if !FANOUT_RELAY_WITH_PROXY
  if (c.proxy.enabled)
    throw std::runtime_error("this fanout-relay was built without the backend proxy (libcurl4-openssl-dev missing)");
#endif
  // The connect answer must come before the handshake deadline, or the client gets the server's 504.
  if (c.proxy.enabled && c.proxy.connect && c.proxy.timeout >= c.server.handshake_timeout)
    throw std::runtime_error(fmt::format("proxy.timeout_ms ({}) must be below server.handshake_timeout_ms ({})",
                                         c.proxy.timeout.count(), c.server.handshake_timeout.count()));
  if (c.proxy.enabled && c.role == Role::ingest)
    throw std::runtime_error("[proxy] forwards client events, and role ingest serves no clients");
  // [auth] and [[acl]]: the key file is read (and every rule checked) now, so --check tells.
  try {
    auto& auth = c.server.auth;
    if (!c.auth.verifier.key_file.empty()) auth.verifier = std::make_shared<fanout::TokenVerifier>(c.auth.verifier);
    // A default other than `authenticated` with no rules still means something: one rule for every topic.
    if (c.auth.acl.empty() && c.auth.default_access != fanout::Access::authenticated)
      c.auth.acl.push_back({"*", c.auth.default_access});
    auth.rules = fanout::AccessRules(c.auth.acl, c.auth.default_access);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(fmt::format("[auth]: {}", e.what()));
  }
  if (c.listen.empty()) c.listen.push_back(Listen{});
  for (auto& l : c.listen)
    if (l.tls && (c.tls_cert.empty() || c.tls_key.empty()))
      throw std::runtime_error(fmt::format("TLS listener {}:{} needs tls_cert and tls_key", l.host, l.port));
  if (c.upstreams.empty() && c.role != Role::edge) c.simulator.enabled = true;
  // Routers and policies reject bad templates and names here, before anything starts. URLs too,
  // except under --check, which lists every problem it finds (check.hpp) instead of the first.
  for (auto& u : c.upstreams) {
    try {
      fanout::Router probe(u.route);
      if (!c.check)
        for (auto& url : u.options.urls) fanout::parse_ws_url(url);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(fmt::format("upstream '{}': {}", u.name, e.what()));
    }
  }
  return true;
}

}  // namespace relay

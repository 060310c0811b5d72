// The relay's configuration: a TOML file (toml++) with flags (CLI11) on top. See relay.toml.
#pragma once

#include <fanout/gateway.hpp>
#include <fanout/hub.hpp>
#include <fanout/journal_sink.hpp>
#include <fanout/postgres_sink.hpp>
#include <fanout/processor.hpp>
#include <fanout/router.hpp>
#include <fanout/server.hpp>
#include <fanout/sink.hpp>
#include <fanout/topic_routes.hpp>
#include <fanout/upstream.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log.hpp"

namespace relay {

struct Listen {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  bool tls = false;
};

struct UpstreamConfig {
  std::string name = "upstream";
  fanout::Upstream::Options options{};
  fanout::Router::Options route{};
  bool standby = false;  // a second connection to the same stream; duplicates are dropped
};

struct SimulatorConfig {
  bool enabled = false;  // run the bundled feed simulator in-process
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port
  double rate = 10;        // messages per second per instrument
  std::size_t size = 200;  // bytes per message, about
};

/// [processor]: a stage between the router and the hub, on worker threads.
struct ProcessorConfig {
  bool enabled = false;
  std::string stage = "bars";  // bars: raw messages plus OHLC/VWAP bars; forward: raw messages only
  fanout::Processor::Options options{};
  std::chrono::milliseconds bar_interval = std::chrono::seconds(1);
  std::string bar_source = "tickers:";  // topics (prefix) whose messages are ticks
  std::string bar_topic = "bars:";      // a bar is published on this + instId
};

/// One [[sink]]: a journal or PostgreSQL, fed with every published message its topics select.
struct SinkConfig {
  std::string type;  // journal | postgres
  fanout::Sink::Options options{};
  fanout::JournalWriter::Options journal{};
  fanout::PostgresWriter::Options postgres{};
  std::string spill_to{};  // name of a sink that takes what this one's full queue would drop
};

/// The operator's HTTP endpoints, served on the admin listener ([admin]), not to clients.
struct HttpConfig {
  bool metrics = true;                    // GET metrics_path: Prometheus text format
  std::string metrics_path = "/metrics";  //
  bool status_page = true;                // GET / (live status page) and GET /status.json (what it polls)
  std::size_t status_max_topics = 1000;   // topics with their own rate; later ones are summed as "(other)"
  unsigned status_history_s = 300;        // seconds of history the page's chart shows (one point a second)
};

/// [admin]: the listener for metrics, the status page, status.json and the topic list, apart from
/// the clients' port (docs/security.md). Loopback by default; a token guards it wherever it is served.
struct AdminConfig {
  std::optional<Listen> listen = Listen{"127.0.0.1", 8081};  // nullopt: no admin listener ("off")
  std::string token{};     // when set: Authorization: Bearer <token> on every admin route
  bool on_public = false;  // also serve the admin routes on the client listeners (needs a token)
  bool topic_list = true;  // GET /topics
  fanout::TopicListOptions topics{};
};

/// [api]: the server API (docs/server-api.md) on the admin listener, behind API keys. Off without a key
/// file: its endpoints then answer 404 like any unknown path.
struct ApiConfig {
  std::string key_file{};                // one key per line (16+ characters; # comments); SIGHUP rereads it
  std::vector<std::string> keys{};       // from key_file, by load()
  std::size_t max_body_bytes = 1 << 20;  // request bodies on the admin listener; larger ones get 413
  std::size_t max_batch = 1000;          // commands in one /api/batch; more get 413
  bool enabled() const noexcept { return !keys.empty(); }
};

/// [gateway]: client ids and user ids on the client listeners (fanout::Gateway), which the server
/// API addresses. `node` empty: the host name (characters outside [A-Za-z0-9_.] made '_'), or "n1".
struct GatewayConfig {
  std::string node{};
  std::size_t max_connections_per_user = 100;
  std::size_t max_list = 10'000;
};

/// What this relay does: `both` ingests and serves clients (one node; through Redis when [redis] is
/// set), `ingest` only ingests into Redis (one leader per upstream, others stand by), `edge` only
/// serves clients from Redis. See docs/scaling.md.
enum class Role { both, ingest, edge };
const char* to_string(Role r) noexcept;

struct RedisConfig {
  bool enabled = false;  // [redis] given, or --redis
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string prefix = "fanout";                                  // keys and channels
  std::chrono::milliseconds lease_ttl = std::chrono::seconds(3);  // takeover after a leader dies
  std::size_t stream_maxlen = 10'000;                             // history kept per topic in Redis, about
  bool subscribe_all = false;                                     // edge: one PSUBSCRIBE instead of per topic
  // The Gateway across nodes (role edge or both; docs/cluster.md): server API commands through
  // prefix:cmd, users' presence through prefix:presence.
  bool gateway = true;                                                   // false: this node's Gateway stays local
  std::chrono::milliseconds presence_ttl = std::chrono::seconds(5);      // a dead node's users go offline after it
  std::size_t command_stream_maxlen = 10'000;                            // prefix:cmd trimmed to about this
  std::size_t max_command_bytes = 1 << 20;                               // longer commands from Redis are ignored
  std::chrono::milliseconds max_command_age = std::chrono::seconds(30);  // older stream entries are skipped
};

/// [auth] and [[acl]]: tokens, access rules and Origin; applied to Config::server.auth in load().
struct AuthConfig {
  fanout::TokenVerifier::Options verifier{};  // key_file set: tokens on (SIGHUP reloads it)
  std::vector<fanout::AccessRules::Rule> acl{};
  fanout::Access default_access = fanout::Access::authenticated;
};

/// [proxy]: events forwarded to an HTTP backend (backend_proxy.hpp; docs/relay.md, "Backend proxy").
struct ProxyConfig {
  bool enabled = false;  // [proxy] given
  std::string url{};     // http(s)://host:port/prefix: events go to url + "/connect", "/message", ...
  bool connect = true, message = true, rpc = true, disconnect = true;  // `events`: all four by default
  std::chrono::milliseconds timeout = std::chrono::seconds(3);         // per request, queue time included
  std::size_t max_in_flight = 16;                                      // workers, each one connection
  std::size_t max_queue = 1024;                                        // waiting requests; past it: busy
  std::size_t max_queue_bytes = 16 << 20;                              // their bodies
  std::size_t max_response_bytes = 64 * 1024;                          // a larger answer is a bad one
  // Request headers the connect body carries (case-insensitive); the Cookie header also parsed.
  std::vector<std::string> headers{"Cookie", "Authorization", "User-Agent", "X-Forwarded-For"};
};

/// [log]: what the relay writes on stderr (log.hpp). `level` is reloaded on SIGHUP.
struct LogConfig {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::text;
};

struct Config {
  std::vector<Listen> listen{};
  std::vector<std::string> paths{"/ws"};
  unsigned shards = 1;
  fanout::Server::Options server{};  // limits and timeouts; host/port/paths/tls come from above
  fanout::Hub::Options hub{};        // topics: history, snapshot keys, how many
  std::string tls_cert{}, tls_key{};
  bool tls_own_records = true;  // fanout::Server::Tls::own_records
  std::vector<UpstreamConfig> upstreams{};
  SimulatorConfig simulator{};
  ProcessorConfig processor{};
  std::vector<SinkConfig> sinks{};
  HttpConfig http{};
  AdminConfig admin{};
  unsigned stats_interval_s = 10;
  std::chrono::milliseconds drain = std::chrono::seconds(5);
  Role role = Role::both;
  RedisConfig redis{};
  AuthConfig auth{};
  ProxyConfig proxy{};
  ApiConfig api{};
  GatewayConfig gateway{};
  LogConfig log{};
  // On SIGTERM, /readyz answers 503 this long before the listeners close and clients drain, so a
  // load balancer stops sending new clients first ([server] drain_delay_ms).
  std::chrono::milliseconds drain_delay{0};

  // How this configuration was made, for --check and SIGHUP (which reads the file again).
  std::string config_file{};
  bool check = false;                   // --check: validate (check.hpp) and exit
  std::vector<std::string> warnings{};  // for the log once it is set up: e.g. unknown FANOUT_* variables
};

/// One key that a FANOUT_* variable may set: `section` "" for the top level (env.hpp).
struct SettableKey {
  std::string_view section, key;
};
/// Every key of the plain tables ([server], [limits], [log]...; not [[upstream]], [[sink]], [[acl]]).
std::vector<SettableKey> settable_keys();

/// Builds the configuration: defaults < the file --config names < FANOUT_* environment variables
/// (`env`, NAME=VALUE strings; env.hpp) < flags. Throws std::runtime_error with a message for the
/// user on a bad file, variable or flag; returns false when --help or --version printed what was
/// asked. With --check, out.check is set and the caller validates (check.hpp).
bool load(int argc, char** argv, const std::vector<std::string>& env, Config& out);

/// Applies a TOML document (what --config names) to `out`; `path` names it in error messages. Throws
/// std::runtime_error on bad TOML or a bad key or value. load() then checks the whole.
void apply_toml(std::string_view text, const std::string& path, Config& out);

/// [api] key_file's keys: one a line (16-512 characters), blank lines and # comments skipped. Throws
/// std::runtime_error when the file cannot be read, holds no key or a bad one.
std::vector<std::string> read_api_keys(const std::string& path);

/// What --version prints: "fanout-relay 0.1.0 (features: ws tls redis)", the version being the
/// CMake project's (fanout/version.hpp).
std::string version_line();

}  // namespace relay

// The relay's configuration: a TOML file (toml++) with flags (CLI11) on top. See relay.toml.
#pragma once

#include <fanout/router.hpp>
#include <fanout/server.hpp>
#include <fanout/upstream.hpp>

#include <string>
#include <vector>

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

/// Plain HTTP answers on the WebSocket listeners, beside GET /healthz.
struct HttpConfig {
  bool metrics = true;                    // GET metrics_path: Prometheus text format
  std::string metrics_path = "/metrics";  //
  bool status_page = true;                // GET / (live status page) and GET /status.json (what it polls)
  std::size_t status_max_topics = 1000;   // topics with their own rate; later ones are summed as "(other)"
  unsigned status_history_s = 300;        // seconds of history the page's chart shows (one point a second)
};

struct Config {
  std::vector<Listen> listen{};
  std::vector<std::string> paths{"/ws"};
  unsigned shards = 1;
  fanout::Server::Options server{};  // limits and timeouts; host/port/paths/tls come from above
  std::string tls_cert{}, tls_key{};
  std::vector<UpstreamConfig> upstreams{};
  SimulatorConfig simulator{};
  HttpConfig http{};
  unsigned stats_interval_s = 10;
  std::chrono::milliseconds drain = std::chrono::seconds(5);
};

/// Builds the configuration from argv (and the file --config names). Throws std::runtime_error
/// with a message for the user on a bad file or flag; returns false when --help was printed.
bool load(int argc, char** argv, Config& out);

}  // namespace relay

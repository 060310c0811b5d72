// fanout-relay: upstream WebSocket feeds -> router -> hub -> many downstream clients.
//
//   fanout-relay                          # relays the bundled feed simulator on 127.0.0.1:8080/ws
//   fanout-relay --config relay.toml
//   fanout-relay -u wss://ws.okx.com:8443/ws/v5/public
//     -s '{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}' -r '{arg.channel}:{arg.instId}'
//
// main() composes the parts in the order they depend on each other: config -> ingest loop ->
// simulator -> runtime and hub -> bus -> servers -> sinks -> processor -> feeds; starts them, waits
// for SIGINT/SIGTERM and stops them in the order that loses nothing (see drain_and_report).
#include <fanout/fanout.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "admin.hpp"
#include "api.hpp"
#include "check.hpp"
#include "config.hpp"
#include "env.hpp"
#include "feeds.hpp"
#include "log.hpp"
#include "processor.hpp"
#include "readiness.hpp"
#include "reload.hpp"
#include "servers.hpp"
#include "sinks.hpp"
#include "status.hpp"
#if FANOUT_WITH_REDIS
#include "bus_node.hpp"
#endif
#if FANOUT_RELAY_WITH_PROXY
#include "backend_proxy.hpp"
#endif

namespace {

using relay::log;
using relay::log_error;

/// The ingest loop: upstreams, routing, publishing and the periodic timers run on its one thread,
/// off the I/O shards. The signal handler is installed first, so a signal during startup still
/// shuts down cleanly.
class Ingest {
 public:
  Ingest() {
    signals_.async_wait([this](const asio::error_code& ec, int sig) {
      if (!ec) stop_signal_.set_value(sig);
    });
  }
  asio::io_context& io() noexcept { return io_; }
  void run() {
    thread_ = std::thread([this] { io_.run(); });
  }
  int wait_for_signal() { return stop_signal_.get_future().get(); }
  void stop() {
    guard_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  ~Ingest() { stop(); }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::promise<int> stop_signal_;
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
  std::thread thread_;
};

/// Runs `tick` on the ingest loop every `period`.
class Periodic {
 public:
  Periodic(asio::io_context& io, std::chrono::seconds period, std::function<void()> tick)
      : timer_(io), period_(period), tick_(std::move(tick)) {}
  /// The first tick now when `now`, else after one period.
  void start(bool now) {
    asio::post(timer_.get_executor(), [this, now] {
      if (now) tick_();
      arm();
    });
  }
  void cancel() {
    asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
  }

 private:
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this](const asio::error_code& ec) {
      if (ec) return;
      tick_();
      arm();
    });
  }
  asio::steady_timer timer_;
  std::chrono::seconds period_;
  std::function<void()> tick_;
};

std::unique_ptr<fanout::Runtime> build_runtime(const relay::Config& config) {
  return relay::building(2, "bad [server] shards", [&] {
    return std::make_unique<fanout::Runtime>(fanout::Runtime::Options{.shards = config.shards});
  });
}

std::unique_ptr<fanout::Hub> build_hub(fanout::Runtime& runtime, const relay::Config& config) {
  return relay::building(2, "bad [history] configuration",
                         [&] { return std::make_unique<fanout::Hub>(runtime, config.hub); });
}

#if FANOUT_WITH_REDIS
using BusNode = relay::BusNode;
// Through Redis (docs/scaling.md): leases for ingest, subscriptions for the edge.
std::unique_ptr<BusNode> build_bus(asio::io_context& ingest, const relay::Config& config, fanout::Hub& hub) {
  if (!config.redis.enabled) return nullptr;
  return relay::building(2, "bad redis configuration", [&] {
    return std::make_unique<BusNode>(ingest, config, hub, [](const std::string& line) { log("{}", line); });
  });
}
#else
struct BusNode {};
std::unique_ptr<BusNode> build_bus(asio::io_context&, const relay::Config&, fanout::Hub&) { return nullptr; }
#endif

#if FANOUT_RELAY_WITH_PROXY
using BackendProxy = relay::BackendProxy;
// [proxy]: client events to an HTTP backend (docs/relay.md, "Backend proxy").
std::unique_ptr<BackendProxy> build_proxy(const relay::Config& config) {
  if (!config.proxy.enabled) return nullptr;
  auto proxy = std::make_unique<BackendProxy>(config.proxy, [](const std::string& line) { log("{}", line); });
  log("proxy: events to {} (timeout {} ms, {} in flight, queue {})", fanout::redact_url(config.proxy.url),
      config.proxy.timeout.count(), config.proxy.max_in_flight, config.proxy.max_queue);
  return proxy;
}
fanout::Server::Callbacks proxy_callbacks(BackendProxy* proxy, const fanout::Gateway& gateway) {
  if (!proxy) return {};
  // The backend names connections as the server API does: by the Gateway's client id.
  return proxy->callbacks([&gateway](const fanout::Session& s) { return gateway.client_id(s); });
}
#else
struct BackendProxy {
  void stop(std::chrono::milliseconds) {}
  std::string stats_line() const { return {}; }
};
std::unique_ptr<BackendProxy> build_proxy(const relay::Config&) { return nullptr; }
fanout::Server::Callbacks proxy_callbacks(BackendProxy*, const fanout::Gateway&) { return {}; }
#endif

/// Publishing a routed (or processed) message. The hub numbers each topic itself: an upstream's seq
/// may start over when the exchange restarts, and would then look like duplicates. The key feeds
/// snapshots and conflation. Sinks see what the hub accepts through its publish observer.
void publish(fanout::Hub& hub, std::string_view topic, std::string_view payload, fanout::Opcode op,
             const std::optional<std::string>& key) {
  hub.publish(topic, payload, {.key = key ? std::string_view(*key) : std::string_view{}, .op = op});
}

/// Where a routed upstream message goes: to Redis (every edge, this node too in role both, gets it
/// from there), through the processor, or straight to the hub.
relay::Intake build_intake(const relay::Config& config, fanout::Hub& hub, fanout::Processor* processor,
                           [[maybe_unused]] BusNode* bus, relay::StatusBoard& board) {
  const bool count_topics = config.http.status_page || config.http.metrics;
  return [=, &hub, &board](const relay::Feed& f, fanout::Routed& r, std::string_view msg, bool binary) {
    if (count_topics) board.count(r.topic, msg.size());
#if FANOUT_WITH_REDIS
    if (bus) {
      bus->publish(f.config.name, r, msg, binary);
      return;
    }
#endif
    const auto op = binary ? fanout::Opcode::binary : fanout::Opcode::text;
    if (processor)  // with overflow = block this waits for room: the upstream is not read meanwhile
      processor->submit(
          {.topic = std::move(r.topic), .payload = std::string(msg), .key = std::move(r.key), .seq = r.seq, .op = op});
    else
      publish(hub, r.topic, msg, op, r.key);
  };
}

/// Upstreams connect now, or over Redis only while this node leads their stream.
void start_ingest([[maybe_unused]] const relay::Config& config, relay::Feeds& feeds, [[maybe_unused]] BusNode* bus,
                  Ingest& ingest) {
#if FANOUT_WITH_REDIS
  if (bus) {
    for (auto& f : feeds) {
      relay::Feed* fp = f.get();
      bus->lead(
          f->config.name,
          [fp] {
            for (auto& c : fp->connections) c->start();
          },
          [fp] {
            for (auto& c : fp->connections) c->stop();
          });
    }
    asio::post(ingest.io(), [bus] { bus->start(); });
  } else {
    relay::start_feeds(feeds);
  }
  if (config.role == relay::Role::ingest) log("ready: ingest only (no client listener)");
#else
  relay::start_feeds(feeds);
#endif
  ingest.run();
}

/// The periodic stats line: clients, topics, rates and drops; the processor's and each sink's queue.
std::function<void()> stats_line(const relay::Config& config, const relay::Servers& servers, const fanout::Hub& hub,
                                 const fanout::Processor* processor, const fanout::SinkSet& sinks,
                                 [[maybe_unused]] const BusNode* bus, const BackendProxy* proxy) {
  struct Last {
    std::uint64_t deliveries = 0, published = 0;
  };
  return [&, processor, bus, proxy, last = Last{}]() mutable {
    std::uint64_t clients = 0, deliveries = 0, dropped = 0;
    for (auto& s : servers) {
      const auto st = s->stats();
      clients += st.sessions;
      deliveries = std::max(deliveries, st.deliveries);  // shard counters are shared by all servers
      dropped = std::max(dropped, st.dropped_newest + st.dropped_oldest + st.conflated + st.disconnected_slow);
    }
    const auto published = hub.published();
    log("stats: clients {} topics {} published {}/s delivered {}/s dropped {} total", clients, hub.topic_count(),
        (published - last.published) / config.stats_interval_s,
        (deliveries - last.deliveries) / config.stats_interval_s, dropped);
    if (processor) {
      const auto p = processor->stats();
      log("stats: processor queued {} lag {} ms processed {} emitted {} dropped {} errors {} blocked {}", p.queued,
          p.lag.count(), p.processed, p.emitted, p.dropped, p.errors, p.blocked);
    }
    for (auto& s : sinks.sinks()) {
      const auto k = s->stats();
      log("stats: sink {} queued {} lag {} ms written {} dropped {} failed {} retries {} spilled {}", s->options().name,
          k.queued, k.lag.count(), k.written, k.dropped, k.failed, k.retries, k.spilled);
    }
    if (proxy) log("{}", proxy->stats_line());
    last = {deliveries, published};
#if FANOUT_WITH_REDIS
    if (bus) log("{}", bus->stats_line());
    if (bus)
      if (auto g = bus->gateway_stats_line(); !g.empty()) log("{}", g);
#endif
  };
}

/// SIGINT/SIGTERM: the processor first (a submit() waiting for room holds the ingest thread, which
/// the upstreams need to stop; what it has queued is still processed and published), then the
/// upstreams, the bus (stepping down now, so a standby takes over without waiting for the lease to
/// expire), the clients (drained up to drain_ms), the ingest loop, and last the sinks, which write
/// what is queued, each bounded by its stop_timeout_ms.
void drain_and_report(const relay::Config& config, int sig, fanout::Processor* processor, relay::Feeds& feeds,
                      [[maybe_unused]] BusNode* bus, fanout::Runtime& runtime, BackendProxy* proxy, Ingest& ingest,
                      fanout::sim::FeedSimulator* simulator, fanout::SinkSet& sinks) {
  if (config.drain_delay.count() > 0) {
    // /readyz says 503 already; the listeners stay open meanwhile, so a load balancer sees that
    // and stops sending new clients before they are refused.
    log("signal {}: /readyz answers 503; listeners close in {} ms", sig, config.drain_delay.count());
    std::this_thread::sleep_for(config.drain_delay);
  }
  log("signal {}: draining clients (up to {} ms)", sig, config.drain.count());
  if (processor) {
    processor->stop();
    relay::report_processor(*processor);
  }
  relay::stop_feeds(feeds);
#if FANOUT_WITH_REDIS
  if (bus) {
    auto stopped = std::make_shared<std::promise<void>>();
    asio::post(ingest.io(), [bus, stopped] { bus->stop([stopped] { stopped->set_value(); }); });
    stopped->get_future().wait_for(std::chrono::seconds(3));
  }
#endif
  runtime.stop(config.drain);
  if (proxy) proxy->stop(std::chrono::seconds(1));  // the clients' disconnects, best effort
  ingest.stop();
  if (simulator) simulator->stop();
  sinks.stop();
  relay::report_sinks(sinks);
  log("stopped");
}

/// Why this relay should not get new clients yet ("" when it should): its data source is not up.
std::function<std::string()> not_ready_reason(const relay::Config& config, const relay::Feeds& feeds,
                                              [[maybe_unused]] const BusNode* bus) {
  return [&config, &feeds, bus]() -> std::string {
#if FANOUT_WITH_REDIS
    // Over Redis, clients are served from the bus (an edge, or role both), and an ingest node
    // publishes into it.
    if (config.redis.enabled) return bus && bus->connected() ? "" : "bus not connected";
#endif
    (void)config;
    for (const auto& f : feeds)
      for (const auto& c : f->connections)
        if (c->state() == fanout::Upstream::State::live) return "";
    return "no upstream live";
  };
}

int run(relay::Config& config, Ingest& ingest, int argc, char** argv) {
  auto simulator = relay::start_simulator(config);
  auto runtime = build_runtime(config);
  auto hub = build_hub(*runtime, config);
  auto bus = build_bus(ingest.io(), config, *hub);
  // Client ids and users on the client listeners, and the server API that addresses them: built
  // before the servers (the gateway outlives every listener it serves).
  // With [redis] (edge or both): the gateway is linked to the other nodes (docs/cluster.md).
  relay::Cluster cluster;
#if FANOUT_WITH_REDIS
  fanout::RedisGatewayLink* link = bus ? bus->link_gateway(config.gateway.node) : nullptr;
  if (link)
    cluster = {.on_user_presence = [link](std::string_view user, bool online) { link->local_user(user, online); },
               .forward = [link](const fanout::ApiCommand& c) { return link->forward_action(c); },
               .online = [link](std::string_view user) { return link->is_online(user); },
               .online_count = [link] { return link->online_count(); },
               .live_publish = true};
#endif
  auto gateway = relay::build_gateway(*runtime, *hub, config, cluster);
  auto api = relay::build_api(config, *gateway, *hub, cluster);
#if FANOUT_WITH_REDIS
  // Commands from Redis run on this node only: an executor that never forwards.
  fanout::ApiExecutor here(*gateway, *hub, {.max_batch = config.api.max_batch, .live_publish = true});
  if (link) link->set_executor([&here](std::string_view command) { return here.execute_json(command).body; });
#endif

  // Observability, served on the admin listener (and on the client listeners only behind the admin
  // token, when [admin] public says so). Handlers run on shard threads once the runtime runs; they
  // read the servers, hub and feeds, which are all built before runtime.start().
  relay::Feeds feeds;
  relay::Servers servers;
  fanout::MetricsRegistry registry;
  relay::StatusBoard board({.max_topics = config.http.status_max_topics, .history = config.http.status_history_s});
  auto totals = [&] { return relay::live_totals(servers, *hub, feeds); };
  // /readyz on every listener, without the admin token (probes carry none; it says only ready or not).
  relay::Readiness readiness(not_ready_reason(config, feeds, bus.get()));
  auto admin_routes = relay::admin_routes(config, registry, board, totals, *hub);
  admin_routes.insert(admin_routes.begin(), readiness.route());
  // Built before the servers (their callbacks use it), so destroyed after them.
  auto proxy = build_proxy(config);
  servers = relay::build_servers(*runtime, *hub, config,
                                 config.admin.on_public ? relay::guarded(admin_routes, config.admin.token)
                                                        : std::vector<fanout::HttpRoute>{readiness.route()},
                                 proxy_callbacks(proxy.get(), *gateway));
  relay::attach_gateway(*gateway, servers);
  auto admin = relay::build_admin(*runtime, *hub, config, admin_routes, api.get());

  auto sinks = relay::build_sinks(config);
  relay::attach_sinks(*hub, *sinks);
  auto processor = relay::build_processor(config.processor, [&hub](const fanout::Processor::Output::Item& o) {
    publish(*hub, o.topic, o.payload, o.op, o.key);
  });
  feeds = relay::build_feeds(ingest.io(), config, build_intake(config, *hub, processor.get(), bus.get(), board));

  sinks->start();
  if (processor) processor->start();
  fanout::MetricRegistrations metrics;
  if (config.http.metrics)
    metrics = relay::add_relay_metrics(registry, config, servers, *hub, feeds, board, processor.get(), *sinks);
#if FANOUT_RELAY_WITH_PROXY
  if (config.http.metrics && proxy)
    for (auto& m : proxy->add_metrics(registry)) metrics.push_back(std::move(m));
#endif

  // SIGHUP reloads what can be without dropping clients (reload.hpp), and the API keys ([api]
  // key_file); a bad configuration or key file keeps the one in use.
  asio::signal_set hup(ingest.io(), SIGHUP);
  std::function<void()> on_hup = [&] {
    hup.async_wait([&](const asio::error_code& ec, int) {
      if (ec) return;
      relay::reload(argc, argv, {config, servers, admin.get()});
      relay::reload_api_keys(config, api.get());
      on_hup();
    });
  };
  on_hup();

  runtime->start();
  start_ingest(config, feeds, bus.get(), ingest);
  if (!servers.empty())
    log("ready: try  ws://127.0.0.1:{}{}?subscribe=tickers:BTC-USDT", servers.front()->port(), config.paths.front());

  Periodic stats(ingest.io(), std::chrono::seconds(std::max(config.stats_interval_s, 1u)),
                 stats_line(config, servers, *hub, processor.get(), *sinks, bus.get(), proxy.get()));
  if (config.stats_interval_s != 0) stats.start(false);
  // Once a second: a history point for the status page (rates per topic and in total).
  Periodic sample(ingest.io(), std::chrono::seconds(1), [&] { board.sample(totals()); });
  if (config.http.status_page) sample.start(true);

  const int sig = ingest.wait_for_signal();
  readiness.begin_drain();
  stats.cancel();
  sample.cancel();
  drain_and_report(config, sig, processor.get(), feeds, bus.get(), *runtime, proxy.get(), ingest, simulator.get(),
                   *sinks);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  relay::Config config;
  try {
    if (!relay::load(argc, argv, relay::process_environment(), config)) return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "fanout-relay: {}\n", e.what());
    return 2;
  }
  relay::set_log_format(config.log.format);
  relay::set_log_level(config.log.level);
  for (const auto& w : config.warnings) relay::log_warn("{}", w);
  if (config.check) {
    // Every problem on a line of its own, so one run tells the operator all there is to fix.
    const auto problems = relay::find_problems(config);
    for (const auto& p : problems) fmt::print(stderr, "{}\n", p);
    if (!problems.empty()) {
      fmt::print(stderr, "fanout-relay: configuration has {} problem(s)\n", problems.size());
      return 1;
    }
    fmt::print("{}\n", relay::check_summary(config));
    return 0;
  }
  Ingest ingest;
  try {
    return run(config, ingest, argc, argv);
  } catch (const relay::StartupError& e) {
    log_error("fanout-relay: {}", e.what());
    return e.exit_code();
  }
}

// fanout-relay: upstream WebSocket feeds -> router -> hub -> many downstream clients.
//
//   fanout-relay                          # relays the bundled feed simulator on 127.0.0.1:8080/ws
//   fanout-relay --config relay.toml
//   fanout-relay -u wss://ws.okx.com:8443/ws/v5/public
//     -s '{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}' -r '{arg.channel}:{arg.instId}'
#include <fanout/dedupe.hpp>
#include <fanout/fanout.hpp>
#include <fanout/library_metrics.hpp>
#include <fanout/metrics.hpp>
#include <fanout/pipeline_metrics.hpp>
#if FANOUT_WITH_POSTGRES
#include <fanout/postgres_sink.hpp>
#endif
#include <fanout/router.hpp>
#include <fanout/upstream.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <bars.hpp>
#include <feed_sim.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <future>
#include <memory>
#include <thread>

#include "config.hpp"
#include "status.hpp"
#include "status_page.hpp"
#if FANOUT_WITH_REDIS
#include "bus_node.hpp"
#endif

namespace {

template <class... Args>
void log(fmt::format_string<Args...> f, Args&&... args) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  fmt::print(stderr, "{:%Y-%m-%d %H:%M:%S}.{:03} {}\n", fmt::localtime(std::chrono::system_clock::to_time_t(now)), ms,
             fmt::format(f, std::forward<Args>(args)...));
}

/// One configured upstream: its connection(s), its router and, for a standby pair, the dedupe.
struct Feed {
  relay::UpstreamConfig config;
  fanout::Router router;
  std::unique_ptr<fanout::Dedupe> dedupe;
  std::vector<std::unique_ptr<fanout::Upstream>> connections;
  std::vector<std::string> names;  // of the connections, in logs, metrics and the status page
  std::uint64_t published = 0;
};

}  // namespace

int main(int argc, char** argv) {
  relay::Config config;
  try {
    if (!relay::load(argc, argv, config)) return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "fanout-relay: {}\n", e.what());
    return 2;
  }

  asio::io_context ingest;  // upstreams, routing and publishing run here, off the I/O shards
  auto ingest_guard = asio::make_work_guard(ingest);
  // Installed before anything starts, so a signal during startup still shuts down cleanly.
  std::promise<int> stop_signal;
  asio::signal_set signals(ingest, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& ec, int sig) {
    if (!ec) stop_signal.set_value(sig);
  });
  std::unique_ptr<fanout::sim::FeedSimulator> simulator;
  try {
    if (config.simulator.enabled && config.role != relay::Role::edge) {
      fanout::sim::FeedSimulator::Options so;
      so.host = config.simulator.host;
      so.port = config.simulator.port;
      so.rate = config.simulator.rate;
      so.size = config.simulator.size;
      simulator = std::make_unique<fanout::sim::FeedSimulator>(so);
      simulator->start();
      relay::UpstreamConfig u;
      u.name = "simulator";
      u.options.name = u.name;
      u.options.urls = {fmt::format("ws://127.0.0.1:{}/ws", simulator->port())};
      u.options.subscribe = {
          R"({"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},{"channel":"tickers","instId":"ETH-USDT"},)"
          R"({"channel":"trades","instId":"BTC-USDT"},{"channel":"trades","instId":"ETH-USDT"}]})"};
      u.route.key_path = "data.0.instId";
      u.route.seq_path = "data.0.seq";
      config.upstreams.insert(config.upstreams.begin(), std::move(u));
      log("feed simulator on ws://127.0.0.1:{}/ws ({} msg/s per instrument)", simulator->port(), config.simulator.rate);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "fanout-relay: cannot start the feed simulator: {}\n", e.what());
    return 1;
  }

  fanout::Runtime runtime(fanout::Runtime::Options{.shards = config.shards});
  fanout::Hub hub(runtime, config.hub);
#if FANOUT_WITH_REDIS
  // Through Redis (docs/scaling.md): leases for ingest, subscriptions for the edge.
  std::unique_ptr<relay::BusNode> bus;
  if (config.redis.enabled) {
    try {
      bus = std::make_unique<relay::BusNode>(ingest, config, hub, [](const std::string& line) { log("{}", line); });
    } catch (const std::exception& e) {
      fmt::print(stderr, "fanout-relay: bad redis configuration: {}\n", e.what());
      return 2;
    }
  }
#endif
  std::vector<std::unique_ptr<fanout::Server>> servers;
  std::vector<std::unique_ptr<Feed>> feeds;
  // Observability, served on the WebSocket listeners. Handlers run on shard threads once the runtime
  // runs; they read the servers, hub and feeds, which are all built before runtime.start().
  fanout::MetricsRegistry registry;
  relay::StatusBoard board({.max_topics = config.http.status_max_topics, .history = config.http.status_history_s});
  auto live_totals = [&] {
    relay::LiveTotals t;
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
  };
  std::vector<fanout::HttpRoute> http_routes;
  if (config.http.metrics) http_routes.push_back(fanout::metrics_route(registry, config.http.metrics_path));
  if (config.http.status_page) {
    http_routes.push_back({"/", false, [](const fanout::HttpRequest&) {
                             return fanout::HttpResponse{.content_type = "text/html; charset=utf-8",
                                                         .body = std::string(relay::status_page_html()),
                                                         .headers = "Cache-Control: no-cache\r\n"};
                           }});
    http_routes.push_back({"/status.json", false, [&](const fanout::HttpRequest&) {
                             return fanout::HttpResponse{.content_type = "application/json",
                                                         .body = board.json(live_totals()),
                                                         .headers = "Cache-Control: no-store\r\n"};
                           }});
  }
  try {
    for (const auto& l : config.listen) {
      if (config.role == relay::Role::ingest) break;  // an ingest-only node serves no clients
      auto o = config.server;
      o.host = l.host;
      o.port = l.port;
      o.paths = config.paths;
      o.http_routes.insert(o.http_routes.end(), http_routes.begin(), http_routes.end());
      if (l.tls) o.tls = fanout::Server::Tls{config.tls_cert, config.tls_key};
      servers.push_back(std::make_unique<fanout::Server>(runtime, hub, o));
      log("serving {}://{}:{}{} (policy {}, queue {} bytes)", l.tls ? "wss" : "ws", l.host, servers.back()->port(),
          config.paths.front(), o.session.policy->name(), o.session.queue.max_bytes);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "fanout-relay: cannot listen: {}\n", e.what());
    return 1;
  }

  // Sinks take every published message (raw and derived) right where it is published.
  fanout::SinkSet sinks;
  try {
    for (auto& sc : config.sinks) {
      auto options = sc.options;
      options.on_error = [name = options.name](std::string_view e) { log("{}", e); };
      std::unique_ptr<fanout::SinkWriter> writer;
      if (sc.type == "journal") writer = std::make_unique<fanout::JournalWriter>(sc.journal);
#if FANOUT_WITH_POSTGRES
      if (sc.type == "postgres") writer = std::make_unique<fanout::PostgresWriter>(sc.postgres);
#endif
      sinks.add(std::move(writer), options);
      log("sink {}: {} ({}){}", options.name, sc.type,
          sc.type == "journal" ? sc.journal.path : fmt::format("table {}", sc.postgres.table),
          options.spill_only ? ", spill only" : "");
    }
    for (std::size_t i = 0; i < config.sinks.size(); ++i)
      for (std::size_t j = 0; j < config.sinks.size(); ++j)
        if (!config.sinks[i].spill_to.empty() && config.sinks[i].spill_to == config.sinks[j].options.name)
          sinks[i].spill_to(sinks[j]);
  } catch (const std::exception& e) {
    fmt::print(stderr, "fanout-relay: bad sink configuration: {}\n", e.what());
    return 2;
  }
  // The hub numbers each topic itself: an upstream's seq may start over when the exchange restarts,
  // and would then look like duplicates. The key feeds snapshots and conflation. Sinks get the hub's
  // seq (one publisher per topic here: the ingest thread, or the topic's one processor worker).
  auto publish = [&](std::string_view topic, std::string_view payload, fanout::Opcode op,
                     const std::optional<std::string>& key) {
    hub.publish(topic, payload, {.key = key ? std::string_view(*key) : std::string_view{}, .op = op});
    if (!sinks.empty()) sinks.offer(topic, payload, hub.last_seq(topic));
  };

  // The processor, when configured, sits between the router and publish, on worker threads.
  std::unique_ptr<fanout::Processor> processor;
  if (config.processor.enabled) {
    const auto& pc = config.processor;
    auto options = pc.options;
    options.on_error = [](std::string_view e) { log("{}", e); };
    processor = std::make_unique<fanout::Processor>(
        options,
        [&pc](std::size_t) -> fanout::Processor::Handler {
          if (pc.stage == "forward")
            return [](const fanout::Processor::Message& m, fanout::Processor::Output& out) { out.forward(m); };
          // Raw first, so a tick the bar builder rejects (it throws, counted) is still forwarded.
          return [&pc, bars = fanout::examples::BarBuilder({.interval = pc.bar_interval})](
                     const fanout::Processor::Message& m, fanout::Processor::Output& out) mutable {
            out.forward(m);
            if (!m.topic.starts_with(pc.bar_source)) return;
            if (auto bar = bars.add(m.payload)) out.emit(pc.bar_topic + bar->inst, bar->json());
          };
        },
        [&](const fanout::Processor::Output::Item& o) { publish(o.topic, o.payload, o.op, o.key); });
    log("processor: stage {}, {} worker(s), queue {} per worker, overflow {}", pc.stage, options.workers,
        options.max_queued, options.overflow == fanout::Processor::Overflow::block ? "block" : "drop_oldest");
  }

  try {
    for (auto& uc : config.upstreams) {
      auto feed = std::make_unique<Feed>(Feed{uc, fanout::Router(uc.route), nullptr, {}, {}, 0});
      if (uc.standby) feed->dedupe = std::make_unique<fanout::Dedupe>();
      const int copies = uc.standby ? 2 : 1;
      for (int i = 0; i < copies; ++i) {
        auto options = uc.options;
        options.name = copies > 1 ? fmt::format("{}#{}", uc.name, i + 1) : uc.name;
        Feed* f = feed.get();
        feed->names.push_back(options.name);
        const bool count_topics = config.http.status_page || config.http.metrics;
        feed->connections.push_back(std::make_unique<fanout::Upstream>(
            ingest, options,
            [&, f, count_topics](std::string_view msg, bool binary) {
              fanout::Routed r;
              if (f->router.route(msg, r) != fanout::Router::Result::routed) return;
              if (f->dedupe && !f->dedupe->first_time(r, msg)) return;
              if (count_topics) board.count(r.topic, msg.size());
#if FANOUT_WITH_REDIS
              if (bus) {  // every edge (this node too, in role both) gets it from Redis
                if (!sinks.empty()) sinks.offer(r.topic, msg, r.seq);
                bus->publish(f->config.name, r, msg, binary);
                ++f->published;
                return;
              }
#endif
              const auto op = binary ? fanout::Opcode::binary : fanout::Opcode::text;
              if (processor)  // with overflow = block this waits for room: the upstream is not read meanwhile
                processor->submit({.topic = std::move(r.topic),
                                   .payload = std::string(msg),
                                   .key = std::move(r.key),
                                   .seq = r.seq,
                                   .op = op});
              else
                publish(r.topic, msg, op, r.key);
              ++f->published;
            },
            [f, name = options.name](const fanout::Upstream::Event& e) {
              // With every connection of a standby pair down, the stream may come back from a
              // restarted source whose seqs start over: remembered ids would hide new messages.
              if (f->dedupe && e.state != fanout::Upstream::State::live &&
                  std::none_of(f->connections.begin(), f->connections.end(),
                               [](auto& c) { return c->state() == fanout::Upstream::State::live; }))
                f->dedupe = std::make_unique<fanout::Dedupe>();
              switch (e.state) {
                case fanout::Upstream::State::live: log("upstream {} live: {}", name, e.url); break;
                case fanout::Upstream::State::backing_off:
                  log("upstream {} down ({}); reconnect in {} ms", name, e.reason, e.retry_in.count());
                  break;
                case fanout::Upstream::State::connecting: log("upstream {} connecting to {}", name, e.url); break;
                case fanout::Upstream::State::stopped: log("upstream {} stopped", name); break;
              }
            }));
      }
      feeds.push_back(std::move(feed));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "fanout-relay: bad upstream configuration: {}\n", e.what());
    return 2;
  }

  sinks.start();
  if (processor) processor->start();
  fanout::MetricRegistrations metrics;
  if (config.http.metrics) {
    // With several listeners each server's series carry listener="host:port".
    for (std::size_t i = 0; i < servers.size(); ++i) {
      fanout::MetricLabels labels;
      if (servers.size() > 1)
        labels.push_back({"listener", fmt::format("{}:{}", config.listen[i].host, servers[i]->port())});
      for (auto& r : fanout::add_server_metrics(registry, *servers[i], hub, labels)) metrics.push_back(std::move(r));
    }
    for (auto& f : feeds)
      for (std::size_t i = 0; i < f->connections.size(); ++i)
        for (auto& r : fanout::add_upstream_metrics(registry, *f->connections[i], f->names[i]))
          metrics.push_back(std::move(r));
    metrics.push_back(registry.add_family("fanout_relay_topic_messages_total",
                                          "Messages routed from upstreams, per topic (at most status_max_topics; "
                                          "the rest as topic=\"(other)\")",
                                          fanout::MetricsRegistry::Type::counter,
                                          [&] { return board.topic_samples(); }));
    if (processor)
      for (auto& r : fanout::add_processor_metrics(registry, *processor)) metrics.push_back(std::move(r));
    for (const auto& sink : sinks.sinks())
      for (auto& r : fanout::add_sink_metrics(registry, *sink, sink->options().name)) metrics.push_back(std::move(r));
  }

  runtime.start();
  for (auto& f : feeds) {
#if FANOUT_WITH_REDIS
    if (bus) {  // connected only while this node leads the stream
      Feed* fp = f.get();
      bus->lead(
          f->config.name,
          [fp] {
            for (auto& c : fp->connections) c->start();
          },
          [fp] {
            for (auto& c : fp->connections) c->stop();
          });
      continue;
    }
#endif
    for (auto& c : f->connections) c->start();
  }
#if FANOUT_WITH_REDIS
  if (bus) asio::post(ingest, [&] { bus->start(); });
  if (config.role == relay::Role::ingest) log("ready: ingest only (no client listener)");
#endif
  std::thread ingest_thread([&] { ingest.run(); });
  if (!servers.empty())
    log("ready: try  ws://127.0.0.1:{}{}?subscribe=tickers:BTC-USDT", servers.front()->port(), config.paths.front());

  // Periodic stats, on the ingest loop.
  asio::steady_timer stats_timer(ingest);
  std::uint64_t last_deliveries = 0, last_published = 0;
  std::function<void()> stats = [&] {
    if (config.stats_interval_s == 0) return;
    stats_timer.expires_after(std::chrono::seconds(config.stats_interval_s));
    stats_timer.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      std::uint64_t clients = 0, deliveries = 0, dropped = 0;
      for (auto& s : servers) {
        const auto st = s->stats();
        clients += st.sessions;
        deliveries = std::max(deliveries, st.deliveries);  // shard counters are shared by all servers
        dropped = std::max(dropped, st.dropped_newest + st.dropped_oldest + st.conflated + st.disconnected_slow);
      }
      const auto published = hub.published();
      log("stats: clients {} topics {} published {}/s delivered {}/s dropped {} total", clients, hub.topic_count(),
          (published - last_published) / config.stats_interval_s,
          (deliveries - last_deliveries) / config.stats_interval_s, dropped);
      if (processor) {
        const auto p = processor->stats();
        log("stats: processor queued {} lag {} ms processed {} emitted {} dropped {} errors {} blocked {}", p.queued,
            p.lag.count(), p.processed, p.emitted, p.dropped, p.errors, p.blocked);
      }
      for (auto& s : sinks.sinks()) {
        const auto k = s->stats();
        log("stats: sink {} queued {} lag {} ms written {} dropped {} failed {} retries {} spilled {}",
            s->options().name, k.queued, k.lag.count(), k.written, k.dropped, k.failed, k.retries, k.spilled);
      }
      last_deliveries = deliveries;
      last_published = published;
#if FANOUT_WITH_REDIS
      if (bus) log("{}", bus->stats_line());
#endif
      stats();
    });
  };
  asio::post(ingest, stats);

  // Once a second: a history point for the status page (rates per topic and in total).
  asio::steady_timer sample_timer(ingest);
  std::function<void()> sample = [&] {
    board.sample(live_totals());
    sample_timer.expires_after(std::chrono::seconds(1));
    sample_timer.async_wait([&](const asio::error_code& ec) {
      if (!ec) sample();
    });
  };
  if (config.http.status_page) asio::post(ingest, sample);

  const int sig = stop_signal.get_future().get();
  log("signal {}: draining clients (up to {} ms)", sig, config.drain.count());
  // The processor first: a submit() waiting for room (overflow = block) holds the ingest thread,
  // which the upstreams need to stop. What it has queued is still processed and published.
  if (processor) {
    processor->stop();
    const auto p = processor->stats();
    log("processor: processed {} emitted {} dropped {} errors {}", p.processed, p.emitted, p.dropped, p.errors);
  }
  for (auto& f : feeds)
    for (auto& c : f->connections) c->stop();
  stats_timer.cancel();
  sample_timer.cancel();
#if FANOUT_WITH_REDIS
  if (bus) {  // step down now, so a standby takes over without waiting for the lease to expire
    auto stopped = std::make_shared<std::promise<void>>();
    asio::post(ingest, [&, stopped] { bus->stop([stopped] { stopped->set_value(); }); });
    stopped->get_future().wait_for(std::chrono::seconds(3));
  }
#endif
  runtime.stop(config.drain);
  ingest_guard.reset();
  ingest.stop();
  ingest_thread.join();
  if (simulator) simulator->stop();
  sinks.stop();  // writes what is queued, each bounded by its stop_timeout_ms
  for (auto& s : sinks.sinks()) {
    const auto k = s->stats();
    log("sink {}: offered {} written {} dropped {} failed {} retries {} spilled {}", s->options().name, k.offered,
        k.written, k.dropped, k.failed, k.retries, k.spilled);
  }
  log("stopped");
  return 0;
}

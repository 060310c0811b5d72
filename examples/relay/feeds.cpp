#include "feeds.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>

#include "log.hpp"

namespace relay {
namespace {

void log_event(const std::string& name, const fanout::Upstream::Event& e) {
  switch (e.state) {
    case fanout::Upstream::State::live: log("upstream {} live: {}", name, e.url); break;
    case fanout::Upstream::State::backing_off:
      log_warn("upstream {} down ({}); reconnect in {} ms", name, e.reason, e.retry_in.count());
      break;
    case fanout::Upstream::State::connecting: log_debug("upstream {} connecting to {}", name, e.url); break;
    case fanout::Upstream::State::stopped: log("upstream {} stopped", name); break;
  }
}

std::unique_ptr<fanout::Upstream> connect(asio::io_context& ingest, Feed& f, fanout::Upstream::Options options,
                                          std::shared_ptr<const Intake> intake) {
  const std::string name = options.name;
  return std::make_unique<fanout::Upstream>(
      ingest, std::move(options),
      [&f, intake = std::move(intake)](std::string_view msg, bool binary) {
        fanout::Routed r;
        if (f.router.route(msg, r) != fanout::Router::Result::routed) return;
        if (f.dedupe && !f.dedupe->first_time(r, msg)) return;
        (*intake)(f, r, msg, binary);
      },
      [&f, name](const fanout::Upstream::Event& e) {
        // With every connection of a standby pair down, the stream may come back from a
        // restarted source whose seqs start over: remembered ids would hide new messages.
        if (f.dedupe && e.state != fanout::Upstream::State::live &&
            std::none_of(f.connections.begin(), f.connections.end(),
                         [](auto& c) { return c->state() == fanout::Upstream::State::live; }))
          f.dedupe = std::make_unique<fanout::Dedupe>();
        log_event(name, e);
      });
}

/// The router's non-JSON hook: one log line per k_non_json_log_every at most, with how many came
/// since the last one and where they went, so a feed that turns to garbage is seen, not flooded.
constexpr auto k_non_json_log_every = std::chrono::seconds(10);

std::function<void(std::string_view)> non_json_logger(const UpstreamConfig& uc) {
  const auto& r = uc.route;
  const std::string fate = !r.non_json_topic.empty()  ? fmt::format("routed to '{}'", r.non_json_topic)
                           : !r.default_topic.empty() ? fmt::format("routed to default_topic '{}'", r.default_topic)
                                                      : std::string("dropped (no default_topic)");
  struct State {
    std::chrono::steady_clock::time_point last{};
    std::uint64_t since_last = 0;
  };
  return [name = uc.name, fate, state = std::make_shared<State>()](std::string_view msg) {
    ++state->since_last;
    const auto now = std::chrono::steady_clock::now();
    if (state->last != std::chrono::steady_clock::time_point{} && now - state->last < k_non_json_log_every) return;
    std::string excerpt(msg.substr(0, 64));
    for (char& c : excerpt)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '.';
    log_warn("upstream {}: {} non-JSON message(s) {} (fanout_router_non_json_total); last: \"{}{}\"", name,
             state->since_last, fate, excerpt, msg.size() > excerpt.size() ? "..." : "");
    state->last = now;
    state->since_last = 0;
  };
}

}  // namespace

std::unique_ptr<fanout::sim::FeedSimulator> start_simulator(Config& config) {
  if (!config.simulator.enabled || config.role == Role::edge) return nullptr;
  return building(1, "cannot start the feed simulator", [&] {
    fanout::sim::FeedSimulator::Options so;
    so.host = config.simulator.host;
    so.port = config.simulator.port;
    so.rate = config.simulator.rate;
    so.size = config.simulator.size;
    auto simulator = std::make_unique<fanout::sim::FeedSimulator>(so);
    simulator->start();
    UpstreamConfig u;
    u.name = "simulator";
    u.options.name = u.name;
    u.options.urls = {fmt::format("ws://127.0.0.1:{}/ws", simulator->port())};
    u.options.subscribe = {
        R"({"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},{"channel":"tickers","instId":"ETH-USDT"},)"
        R"({"channel":"trades","instId":"BTC-USDT"},{"channel":"trades","instId":"ETH-USDT"}]})"};
    u.route.key_path = "data.0.instId";
    u.route.seq_path = "data.0.seq";
    config.upstreams.insert(config.upstreams.begin(), std::move(u));
    // Its topics are known in advance: declared, the URL printed at "ready" works before the first message.
    for (const char* t : {"tickers:BTC-USDT", "tickers:ETH-USDT", "trades:BTC-USDT", "trades:ETH-USDT"})
      config.hub.topics.emplace_back(t);
    log("feed simulator on ws://127.0.0.1:{}/ws ({} msg/s per instrument)", simulator->port(), config.simulator.rate);
    return simulator;
  });
}

Feeds build_feeds(asio::io_context& ingest, const Config& config, Intake intake) {
  return building(2, "bad upstream configuration", [&] {
    auto shared_intake = std::make_shared<const Intake>(std::move(intake));
    Feeds feeds;
    for (const auto& uc : config.upstreams) {
      auto route = uc.route;
      route.on_non_json = non_json_logger(uc);
      auto feed = std::make_unique<Feed>(Feed{uc, fanout::Router(std::move(route)), nullptr, {}, {}});
      if (uc.standby) feed->dedupe = std::make_unique<fanout::Dedupe>();
      const int copies = uc.standby ? 2 : 1;
      for (int i = 0; i < copies; ++i) {
        auto options = uc.options;
        options.name = copies > 1 ? fmt::format("{}#{}", uc.name, i + 1) : uc.name;
        if (copies > 1) {
          // A standby pair starts on two endpoints (where two exist) and, after a failure, does not
          // move onto the one its partner is live on: losing one endpoint leaves one connection up.
          options.first_url = static_cast<std::size_t>(i);
          options.avoid_url = [&f = *feed, i](std::size_t url) {
            for (std::size_t j = 0; j < f.connections.size(); ++j)
              if (j != static_cast<std::size_t>(i) && f.connections[j]->live_url() == url) return true;
            return false;
          };
        }
        feed->names.push_back(options.name);
        feed->connections.push_back(connect(ingest, *feed, std::move(options), shared_intake));
      }
      feeds.push_back(std::move(feed));
    }
    return feeds;
  });
}

void start_feeds(Feeds& feeds) {
  for (auto& f : feeds)
    for (auto& c : f->connections) c->start();
}

void stop_feeds(Feeds& feeds) {
  for (auto& f : feeds)
    for (auto& c : f->connections) c->stop();
}

}  // namespace relay

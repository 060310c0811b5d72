// fanout-processing: a processing stage off the forwarding path. The bundled feed simulator's ticker
// stream comes in through an Upstream and the Router; a Processor with two workers forwards every
// raw message and turns each instrument's ticks into one-second OHLC/VWAP bars, published as a
// derived topic next to the raw one. The bar builder is the relay's own stage
// (examples/relay/stages/bars.hpp); what this example shows is how a stage plugs into a Processor.
//
//   fanout-processing                      # then: ws://127.0.0.1:8080/ws?subscribe=tickers:BTC-USDT,bars:BTC-USDT
//   fanout-processing --port 0 --interval-ms 5000 --workers 4
#include <fanout/fanout.hpp>
#include <fanout/router.hpp>
#include <fanout/upstream.hpp>

#include <CLI/CLI.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/signal_set.hpp>
#include <fmt/format.h>

#include <bars.hpp>
#include <feed_sim.hpp>

#include <thread>

int main(int argc, char** argv) {
  CLI::App app{"fanout-processing: raw tickers and derived OHLC/VWAP bars from the bundled feed simulator"};
  std::uint16_t port = 8080;
  std::size_t workers = 2;
  long interval_ms = 1000;
  double rate = 10;
  app.add_option("--port", port, "WebSocket port on 127.0.0.1 (0: any free)");
  app.add_option("--workers", workers, "processor threads")->check(CLI::Range(1, 64));
  app.add_option("--interval-ms", interval_ms, "bar length")->check(CLI::Range(1L, 86'400'000L));
  app.add_option("--rate", rate, "simulated ticks per second per instrument");
  CLI11_PARSE(app, argc, argv);

  fanout::sim::FeedSimulator sim({.port = 0, .rate = rate, .instruments = {"BTC-USDT", "ETH-USDT", "SOL-USDT"}});
  sim.start();

  fanout::Runtime runtime({.shards = 1});
  // The topics this program will publish, declared: clients may join before the first tick and bar.
  fanout::Hub::Options ho;
  for (const char* inst : {"BTC-USDT", "ETH-USDT", "SOL-USDT"})
    for (const char* channel : {"tickers:", "bars:"}) ho.topics.push_back(std::string(channel) + inst);
  fanout::Hub hub(runtime, ho);
  fanout::Server::Options so;
  so.port = port;
  fanout::Server server(runtime, hub, so);

  // The stage: forward the raw ticker, then fold it into its instrument's bar; a finished bar is
  // published on bars:<instId>. One BarBuilder per worker: an instrument's topic always reaches the
  // same worker, so its bar needs no lock.
  fanout::Processor processor(
      {.workers = workers, .overflow = fanout::Processor::Overflow::block},
      [&](std::size_t) {
        return [bars = relay::stages::BarBuilder({.interval = std::chrono::milliseconds(interval_ms)})](
                   const fanout::Processor::Message& m, fanout::Processor::Output& out) mutable {
          out.forward(m);
          if (auto bar = bars.add(m.payload)) out.emit("bars:" + bar->inst, bar->json());
        };
      },
      [&](const fanout::Processor::Output::Item& o) { hub.publish(o.topic, o.payload, o.op); });

  asio::io_context ingest;  // the upstream, the router and processor.submit() run here
  auto guard = asio::make_work_guard(ingest);
  fanout::Router router({.topic_template = "{arg.channel}:{arg.instId}"});
  fanout::Upstream upstream(
      ingest,
      {.urls = {fmt::format("ws://127.0.0.1:{}/ws", sim.port())},
       .subscribe = {R"({"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},)"
                     R"({"channel":"tickers","instId":"ETH-USDT"},{"channel":"tickers","instId":"SOL-USDT"}]})"}},
      [&](std::string_view msg, bool) {
        fanout::Routed r;
        if (router.route(msg, r) == fanout::Router::Result::routed)
          processor.submit({.topic = std::move(r.topic), .payload = std::string(msg), .seq = r.seq});
      },
      [](const fanout::Upstream::Event&) {});

  asio::signal_set signals(ingest, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) {
    upstream.stop();
    guard.reset();
    ingest.stop();
  });
  processor.start();
  runtime.start();
  upstream.start();
  fmt::print("serving ws://127.0.0.1:{}/ws?subscribe=tickers:BTC-USDT,bars:BTC-USDT  (Ctrl-C stops)\n", server.port());
  std::fflush(stdout);
  ingest.run();
  processor.stop();
  const auto st = processor.stats();
  fmt::print("processed {} messages, published {} (raw + bars), {} errors\n", st.processed, st.emitted, st.errors);
  runtime.stop(std::chrono::seconds(2));
  sim.stop();
  return 0;
}

// fanout-feed-sim: serves an OKX-like market-data feed and misbehaves on command.
//
//   $ fanout-feed-sim --port 0 --rate 100
//   port=41234
//   stats
//   {"connections":0,"subscriptions":0,"messages_sent":0,...}
//   drop
//   ok drop connections=0
//   drop-one
//   ok drop-one connections=0
//
// Prints "port=<N>" once listening, then reads commands from stdin, one per line; every command
// answers with exactly one line on stdout ("ok ...", "error ...", or the stats JSON), so a test can
// wait for that line to know the command has been applied. End of input leaves the simulator
// running until "quit", SIGINT or SIGTERM.
#include "feed_sim.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <pthread.h>

namespace {

constexpr const char* k_help =
    "commands: drop | drop-one | silent on|off | garbage-json | garbage-frame | handshake-delay MS | rate N | stats | "
    "quit";

void say(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// Returns false on "quit".
bool execute(fanout::sim::FeedSimulator& sim, const std::string& line) {
  std::istringstream in(line);
  std::string cmd, arg, extra;
  in >> cmd >> arg >> extra;
  if (cmd.empty()) return true;
  if (!extra.empty()) {
    say(fmt::format("error too many arguments: {}", line));
    return true;
  }
  try {
    if (cmd == "drop" && arg.empty()) {
      say(fmt::format("ok drop connections={}", sim.drop_connections()));
    } else if (cmd == "drop-one" && arg.empty()) {
      say(fmt::format("ok drop-one connections={}", sim.drop_one_connection()));
    } else if (cmd == "silent" && (arg == "on" || arg == "off")) {
      sim.set_silent(arg == "on");
      say(fmt::format("ok silent {}", arg));
    } else if (cmd == "garbage-json" && arg.empty()) {
      say(fmt::format("ok garbage-json connections={}", sim.send_garbage_json()));
    } else if (cmd == "garbage-frame" && arg.empty()) {
      say(fmt::format("ok garbage-frame connections={}", sim.send_garbage_frame()));
    } else if (cmd == "handshake-delay" && !arg.empty()) {
      std::size_t used = 0;
      long ms = std::stol(arg, &used);
      if (used != arg.size() || ms < 0) throw std::invalid_argument("bad delay");
      sim.set_handshake_delay(std::chrono::milliseconds(ms));
      say(fmt::format("ok handshake-delay {}", ms));
    } else if (cmd == "rate" && !arg.empty()) {
      std::size_t used = 0;
      double rate = std::stod(arg, &used);
      if (used != arg.size()) throw std::invalid_argument("bad rate");
      sim.set_rate(rate);
      say(fmt::format("ok rate {}", rate));
    } else if (cmd == "stats" && arg.empty()) {
      say(fanout::sim::to_json(sim.stats()));
    } else if (cmd == "quit" && arg.empty()) {
      say("ok quit");
      return false;
    } else if (cmd == "help") {
      say(fmt::format("ok {}", k_help));
    } else {
      say(fmt::format("error unknown command: {} ({})", line, k_help));
    }
  } catch (const std::exception& e) {
    say(fmt::format("error {}: {}", line, e.what()));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  fanout::sim::FeedSimulator::Options opts;
  long handshake_delay_ms = 0;

  CLI::App app{"fanout-feed-sim: an OKX-like public market-data WebSocket server for tests.\n" + std::string(k_help)};
  app.add_option("--host", opts.host, "address to listen on")->capture_default_str();
  app.add_option("--port", opts.port, "port to listen on; 0 picks a free one")->capture_default_str();
  app.add_option("--rate", opts.rate, "messages per second per stream")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--size", opts.size, "approximate size of a data message in bytes")->capture_default_str();
  auto* cert =
      app.add_option("--tls-cert", opts.tls_cert, "PEM certificate chain: serve wss")->check(CLI::ExistingFile);
  auto* key = app.add_option("--tls-key", opts.tls_key, "PEM private key")->check(CLI::ExistingFile);
  cert->needs(key);
  key->needs(cert);
  app.add_flag("--deflate", opts.deflate, "accept permessage-deflate offers");
  app.add_option(
         "--instruments", opts.instruments,
         "comma-separated instIds whose \"tickers\" streams run from the start (others are created on subscribe)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_flag("--gzip-binary", opts.gzip_binary, "send data messages as gzip-compressed binary frames");
  app.add_option("--handshake-delay", handshake_delay_ms, "milliseconds to wait before the HTTP 101")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-queued-bytes", opts.max_queued_bytes, "drop a client further behind than this")
      ->capture_default_str();
  app.add_flag("-v,--verbose", opts.verbose, "log connections and errors to stderr");
  CLI11_PARSE(app, argc, argv);
  opts.handshake_delay = std::chrono::milliseconds(handshake_delay_ms);

  // Signals go to one waiting thread (blocked here, before any thread starts, so all inherit it).
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  fanout::sim::FeedSimulator sim(opts);
  try {
    sim.start();
  } catch (const std::exception& e) {
    fmt::print(stderr, "fanout-feed-sim: {}\n", e.what());
    return 1;
  }
  say(fmt::format("port={}", sim.port()));

  std::thread([&sim, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    sim.stop();
    std::fflush(stdout);
    std::_Exit(0);
  }).detach();

  std::string line;
  while (std::getline(std::cin, line))
    if (!execute(sim, line)) {
      sim.stop();
      return 0;
    }
  // Input closed (e.g. started with </dev/null): keep serving until a signal arrives.
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

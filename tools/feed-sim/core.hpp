// The simulator's state, shared by its connections (session.hpp) and its streams (feed_sim.cpp).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "feed_sim.hpp"
#include "wire.hpp"

namespace fanout::sim::detail {

using tcp = asio::ip::tcp;
using error_code = std::error_code;
using Clock = std::chrono::steady_clock;

class Session;

// The simulator's state; everything but the atomics is touched on the io thread only.
struct Core {
  struct Stream {
    std::string channel, inst;
    std::uint64_t seq = 0;
    double last = 0;
    std::vector<std::shared_ptr<Session>> subscribers;
  };

  explicit Core(FeedSimulator::Options o)
      : opts(std::move(o)), rate(opts.rate), handshake_delay(opts.handshake_delay) {}

  // Runs fn on the io thread and waits, or inline when already there or not running.
  template <class F>
  auto run_sync(F&& fn) -> decltype(fn()) {
    if (!running.load() || ioc.get_executor().running_in_this_thread()) return fn();
    std::packaged_task<decltype(fn())()> task(std::forward<F>(fn));
    auto result = task.get_future();
    asio::post(ioc, [&task] { task(); });
    return result.get();
  }

  template <class... Args>
  void log(fmt::format_string<Args...> f, Args&&... args) {
    if (!opts.verbose) return;
    fmt::print(stderr, "feed-sim: {}\n", fmt::format(f, std::forward<Args>(args)...));
  }

  void start();
  void shutdown();
  void accept();
  void schedule_tick();
  void on_tick(std::uint64_t generation);
  void emit_tick();
  void apply_rate(double per_second);

  Stream* find_or_create(const std::string& channel, const std::string& inst);
  static std::string stream_key(std::string_view channel, std::string_view inst) {
    std::string k(channel);
    k += '\n';
    k += inst;
    return k;
  }
  void unregister(Session& s);
  std::vector<std::shared_ptr<Session>> all_sessions() const {
    std::vector<std::shared_ptr<Session>> out;
    out.reserve(sessions.size());
    for (auto& [id, s] : sessions) out.push_back(s);
    return out;
  }

  FeedSimulator::Options opts;
  // Declared before ioc: sessions (destroyed with ioc's pending handlers) refer to it.
  std::optional<asio::ssl::context> tls;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  asio::steady_timer tick_timer{ioc};
  asio::steady_timer accept_retry{ioc};
  std::thread thread;
  std::atomic<bool> running{false};
  bool started = false;
  bool stopping = false;

  Codecs codecs;
  std::mt19937_64 rng{42};
  std::string pad;  // random alphanumerics, so compression ratios look like real data
  std::map<std::string, Stream> streams;
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions;  // every live connection
  std::uint64_t next_id = 1;

  // Ticks are scheduled against rate_start: tick k is due at rate_start + k / rate.
  double rate;
  Clock::time_point rate_start{};
  std::uint64_t emitted = 0;
  std::uint64_t tick_generation = 0;

  std::chrono::milliseconds handshake_delay;
  bool silent = false;

  // Read by stats() from any thread, written on the io thread.
  std::atomic<std::uint16_t> bound_port{0};
  std::atomic<std::size_t> stat_connections{0}, stat_subscriptions{0}, stat_streams{0};
  std::atomic<std::uint64_t> stat_messages{0}, stat_bytes{0}, stat_total{0}, stat_slow{0};
  std::atomic<double> stat_rate{0};
  std::atomic<bool> stat_silent{false};
};

}  // namespace fanout::sim::detail

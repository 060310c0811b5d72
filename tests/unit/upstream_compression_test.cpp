// Upstream against the bundled feed simulator, whose WebSocket code is independent of fanout's:
// permessage-deflate, gzip-compressed binary frames, routing of what arrives.
#include <doctest/doctest.h>

#ifdef FANOUT_HAVE_FEED_SIM
#include <fanout/router.hpp>
#include <fanout/upstream.hpp>
#include <feed_sim.hpp>

#include <asio/executor_work_guard.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct Received {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<std::string, bool>> messages;
  void add(std::string_view msg, bool binary) {
    {
      std::lock_guard l(m);
      messages.emplace_back(std::string(msg), binary);
    }
    cv.notify_all();
  }
  /// Waits for n messages; false after a generous limit.
  bool wait_for(std::size_t n) {
    std::unique_lock l(m);
    return cv.wait_for(l, 10s, [&] { return messages.size() >= n; });
  }
};

void run_against(fanout::sim::FeedSimulator::Options so, fanout::Upstream::Options uo, Received& got,
                 bool expect_deflate = false) {
  so.port = 0;
  so.rate = 50;
  fanout::sim::FeedSimulator sim(so);
  sim.start();
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  uo.urls = {"ws://127.0.0.1:" + std::to_string(sim.port()) + "/ws"};
  uo.subscribe = {R"({"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]})"};
  fanout::Upstream up(io, uo, [&](std::string_view m, bool binary) { got.add(m, binary); });
  up.start();
  std::thread t([&] { io.run(); });
  CHECK(got.wait_for(12));
  CHECK(up.stats().permessage_deflate == expect_deflate);
  up.stop();
  guard.reset();
  t.join();
  sim.stop();
}

void check_routable(Received& got) {
  REQUIRE(got.messages.size() >= 12);  // the Upstream is gone: no lock needed
  fanout::Router router(
      fanout::Router::Options{.topic_template = "{arg.channel}:{arg.instId}", .seq_path = "data.0.seq"});
  std::size_t data = 0;
  std::uint64_t last_seq = 0;
  for (auto& [m, binary] : got.messages) {
    CHECK_FALSE(binary);
    fanout::Routed r;
    const auto res = router.route(m, r);
    CHECK((res == fanout::Router::Result::routed || res == fanout::Router::Result::control));
    if (res != fanout::Router::Result::routed) continue;
    ++data;
    CHECK(r.topic == "tickers:BTC-USDT");
    REQUIRE(r.seq);
    if (last_seq) CHECK(*r.seq == last_seq + 1);
    last_seq = *r.seq;
  }
  CHECK(data >= 10);
}

}  // namespace

TEST_CASE("upstream inflates permessage-deflate messages") {
  Received got;
  fanout::sim::FeedSimulator::Options so;
  so.deflate = true;
  run_against(so, {}, got, true);
  check_routable(got);
}

TEST_CASE("upstream inflates gzip binary frames to text when asked") {
  Received got;
  fanout::sim::FeedSimulator::Options so;
  so.gzip_binary = true;
  fanout::Upstream::Options uo;
  uo.inflate_binary = fanout::Upstream::Inflate::gzip_or_zlib;
  run_against(so, uo, got);
  check_routable(got);
}
#endif

// RedisBus and RedisLease against a real redis-server (started and stopped by the test).
#if FANOUT_WITH_REDIS
#include <doctest/doctest.h>

#include <fanout/redis_bus.hpp>
#include <fanout/redis_lease.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "redis_test_server.hpp"

using namespace std::chrono_literals;

namespace {

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

// An io_context on its own thread, which the test can pause (to play a stopped process) and resume.
struct Loop {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{io.get_executor()};
  std::thread thread;
  void run() {
    io.restart();
    thread = std::thread([this] { io.run(); });
  }
  void pause() {
    if (!thread.joinable()) return;
    io.stop();
    thread.join();
  }
  // Runs f on the loop and waits for it.
  template <class F>
  void sync(F f) {
    std::promise<void> done;
    asio::post(io, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  ~Loop() {
    if (thread.joinable()) pause();
  }
};

// Declared after the objects that use a loop: stops the loop before they are destroyed, also when a
// REQUIRE leaves the test early.
struct PauseAtExit {
  Loop& loop;
  ~PauseAtExit() { loop.pause(); }
};

struct Received {
  std::mutex m;
  std::vector<std::tuple<std::string, std::uint64_t, std::string, std::string, fanout::Opcode>> messages;
  void add(const fanout::BusMessage& b) {
    std::lock_guard l(m);
    messages.emplace_back(std::string(b.topic), b.seq, std::string(b.key), std::string(b.payload), b.op);
  }
  std::size_t size() {
    std::lock_guard l(m);
    return messages.size();
  }
  // Seqs of one topic, in arrival order.
  std::vector<std::uint64_t> seqs(const std::string& topic) {
    std::lock_guard l(m);
    std::vector<std::uint64_t> r;
    for (auto& [t, s, k, p, o] : messages)
      if (t == topic) r.push_back(s);
    return r;
  }
};

fanout::RedisBus::Options bus_options(std::uint16_t port) {
  fanout::RedisBus::Options o;
  o.port = port;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  return o;
}

bool consecutive(const std::vector<std::uint64_t>& s, std::uint64_t from, std::uint64_t to) {
  if (s.size() != to - from + 1) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] != from + i) return false;
  return true;
}

}  // namespace

TEST_CASE("redis bus: an edge receives what the ingest publishes, in order, byte for byte") {
  fanout_test::RedisServer redis;
  Loop loop;
  fanout::RedisBus ingest(loop.io, bus_options(redis.port()));
  fanout::RedisBus edge(loop.io, bus_options(redis.port()));
  Received got;
  edge.set_handler([&](const fanout::BusMessage& m) { got.add(m); });
  ingest.start();
  edge.start();
  PauseAtExit loop_guard{loop};
  loop.run();
  edge.subscribe("trades:BTC");
  REQUIRE(eventually([&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:m:trades:BTC"}) == 1; }));
  REQUIRE(eventually([&] { return ingest.connected(); }));
  const std::string binary("\x00\x01\n\xff", 4);
  ingest.publish({.topic = "trades:BTC", .key = "BTC", .payload = R"({"px":1})"}, "feed");
  ingest.publish({.topic = "trades:ETH", .payload = "not subscribed"}, "feed");
  ingest.publish({.topic = "trades:BTC", .payload = binary, .op = fanout::Opcode::binary}, "feed");
  REQUIRE(eventually([&] { return got.size() == 2; }));
  {
    std::lock_guard l(got.m);
    CHECK(got.messages[0] == std::tuple{std::string("trades:BTC"), 1ull, std::string("BTC"), std::string(R"({"px":1})"),
                                        fanout::Opcode::text});
    CHECK(got.messages[1] ==
          std::tuple{std::string("trades:BTC"), 2ull, std::string(), binary, fanout::Opcode::binary});
  }
  CHECK(eventually([&] { return ingest.stats().published == 3; }));
  // History is kept per topic, bounded.
  CHECK(redis.integer({"XLEN", "fanout:s:trades:BTC"}) == 2);
  CHECK(redis.integer({"XLEN", "fanout:s:trades:ETH"}) == 1);
  CHECK(redis.integer({"HGET", "fanout:seq", "trades:BTC"}) == -1);  // a bulk string, not an integer
  // The script cache flushed under it: a publish fails (counted), the script is loaded again.
  redis.integer({"SCRIPT", "FLUSH"});
  ingest.publish({.topic = "trades:BTC", .payload = "lost"}, "feed");
  REQUIRE(eventually([&] { return ingest.stats().publish_failed == 1; }));
  std::this_thread::sleep_for(50ms);
  ingest.publish({.topic = "trades:BTC", .payload = "again"}, "feed");
  REQUIRE(eventually([&] { return got.size() == 3; }));
  CHECK(got.seqs("trades:BTC") == std::vector<std::uint64_t>{1, 2, 3});
  loop.pause();
}

TEST_CASE("redis bus: subscriptions are reference counted and follow interest") {
  fanout_test::RedisServer redis;
  Loop loop;
  fanout::RedisBus edge(loop.io, bus_options(redis.port()));
  edge.start();
  PauseAtExit loop_guard{loop};
  loop.run();
  auto numsub = [&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:m:t"}); };
  edge.subscribe("t");
  edge.subscribe("t");
  REQUIRE(eventually([&] { return numsub() == 1; }));
  edge.unsubscribe("t");
  std::this_thread::sleep_for(100ms);
  CHECK(numsub() == 1);
  edge.unsubscribe("t");
  CHECK(eventually([&] { return numsub() == 0; }));
  // Interest that comes and goes quickly ends subscribed exactly when it ends wanted.
  for (int i = 0; i < 50; ++i) {
    edge.subscribe("t");
    edge.unsubscribe("t");
  }
  edge.subscribe("t");
  CHECK(eventually([&] { return numsub() == 1 && edge.stats().topics == 1; }));
  edge.unsubscribe("t");
  CHECK(eventually([&] { return numsub() == 0 && edge.stats().topics == 0; }));
  loop.pause();
}

TEST_CASE("redis bus: subscribe_all follows every topic and prefills each from its stream") {
  fanout_test::RedisServer redis;
  Loop loop;
  fanout::RedisBus ingest(loop.io, bus_options(redis.port()));
  ingest.start();
  PauseAtExit loop_guard{loop};
  loop.run();
  REQUIRE(eventually([&] { return ingest.connected(); }));
  for (int i = 0; i < 10; ++i) ingest.publish({.topic = "old", .payload = std::to_string(i)}, "feed");
  REQUIRE(eventually([&] { return ingest.stats().published == 10; }));
  loop.pause();

  auto o = bus_options(redis.port());
  o.subscribe_all = true;
  o.prefill_messages = 4;
  fanout::RedisBus edge(loop.io, o);
  Received got;
  edge.set_handler([&](const fanout::BusMessage& m) { got.add(m); });
  edge.start();
  PauseAtExit edge_guard{loop};
  loop.run();
  // Nobody here asked for "old": its last 4 messages arrive anyway (for the hub's history).
  REQUIRE(eventually([&] { return got.size() == 4; }));
  CHECK(consecutive(got.seqs("old"), 7, 10));
  REQUIRE(eventually([&] { return redis.integer({"PUBSUB", "NUMPAT"}) == 1; }));
  ingest.publish({.topic = "new", .payload = "x"}, "feed");
  ingest.publish({.topic = "old", .payload = "y"}, "feed");
  edge.subscribe("old");
  edge.unsubscribe("old");  // interest does not change what a follow-all node receives
  REQUIRE(eventually([&] { return got.size() == 6; }));
  CHECK(got.seqs("new") == std::vector<std::uint64_t>{1});
  CHECK(consecutive(got.seqs("old"), 7, 11));
  CHECK(edge.stats().topics == 2);
  loop.pause();
}

TEST_CASE("redis bus: an edge whose subscription dropped catches up from the stream without gap or duplicate") {
  fanout_test::RedisServer redis;
  Loop loop;
  fanout::RedisBus ingest(loop.io, bus_options(redis.port()));
  fanout::RedisBus edge(loop.io, bus_options(redis.port()));
  Received got;
  edge.set_handler([&](const fanout::BusMessage& m) { got.add(m); });
  ingest.start();
  edge.start();
  PauseAtExit loop_guard{loop};
  loop.run();
  edge.subscribe("t");
  REQUIRE(eventually([&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:m:t"}) == 1 && ingest.connected(); }));
  for (int i = 0; i < 100; ++i) ingest.publish({.topic = "t", .payload = std::to_string(i)}, "feed");
  REQUIRE(eventually([&] { return got.size() == 100; }));
  // Drop the edge's subscription connection while the ingest keeps publishing.
  CHECK(redis.integer({"CLIENT", "KILL", "TYPE", "pubsub"}) == 1);
  for (int i = 100; i < 3000; ++i) ingest.publish({.topic = "t", .payload = std::to_string(i)}, "feed");
  REQUIRE(eventually([&] { return got.size() == 3000; }, 20s));
  std::this_thread::sleep_for(100ms);
  CHECK(consecutive(got.seqs("t"), 1, 3000));
  const auto st = edge.stats();
  CHECK(st.reconnects == 1);
  CHECK(st.gaps == 0);
  CHECK(st.recovered > 0);
  loop.pause();
}

TEST_CASE("redis bus: Redis restarts (append-only): the edge reconnects and recovers from the stream") {
  char tmpl[] = "/tmp/fanout-redis-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  {
    fanout_test::RedisServer redis(0, dir);
    Loop loop;
    fanout::RedisBus ingest(loop.io, bus_options(redis.port()));
    fanout::RedisBus edge(loop.io, bus_options(redis.port()));
    Received got;
    edge.set_handler([&](const fanout::BusMessage& m) { got.add(m); });
    ingest.start();
    edge.start();
    PauseAtExit loop_guard{loop};
    loop.run();
    edge.subscribe("t");
    REQUIRE(eventually([&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:m:t"}) == 1 && ingest.connected(); }));
    for (int i = 0; i < 50; ++i) ingest.publish({.topic = "t", .payload = "x"}, "feed");
    REQUIRE(eventually([&] { return got.size() == 50; }));
    redis.stop();
    REQUIRE(eventually([&] { return !edge.connected() && !ingest.connected(); }));
    redis.start();
    REQUIRE(eventually([&] { return ingest.connected() && edge.connected(); }));
    REQUIRE(eventually([&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:m:t"}) == 1; }));
    // Published while the edge may still be resubscribing: all of it arrives, once, in order.
    for (int i = 0; i < 50; ++i) ingest.publish({.topic = "t", .payload = "y"}, "feed");
    REQUIRE(eventually([&] { return got.size() == 100; }));
    std::this_thread::sleep_for(100ms);
    CHECK(consecutive(got.seqs("t"), 1, 100));
    loop.pause();
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("redis lease: one leader, fencing numbers grow, a deposed leader's publishes are refused") {
  fanout_test::RedisServer redis;
  Loop a_loop, b_loop;
  fanout::RedisLease::Options lo;
  lo.port = redis.port();
  lo.stream = "feed";
  lo.ttl = 400ms;
  std::atomic<int> a_changes{0}, b_changes{0};
  std::atomic<std::uint64_t> fenced_at{0};
  fanout::RedisLease a(a_loop.io, lo, [&](bool, std::uint64_t, std::string_view) { ++a_changes; });
  fanout::RedisLease b(b_loop.io, lo, [&](bool, std::uint64_t, std::string_view) { ++b_changes; });
  fanout::RedisBus a_bus(a_loop.io, bus_options(redis.port()));
  fanout::RedisBus edge(b_loop.io, bus_options(redis.port()));
  Received got;
  edge.set_handler([&](const fanout::BusMessage& m) { got.add(m); });
  a_bus.set_fenced_handler([&](std::string_view stream, std::uint64_t f) {
    CHECK(stream == "feed");
    fenced_at = f;
    a.deposed();
  });
  a.start();
  a_bus.start();
  edge.start();
  PauseAtExit a_loop_guard{a_loop};
  a_loop.run();
  REQUIRE(eventually([&] { return a.leader() && a_bus.connected(); }));
  const std::uint64_t first = a.fence();
  CHECK(first >= 1);
  b.start();
  PauseAtExit b_loop_guard{b_loop};
  b_loop.run();
  edge.subscribe("t");
  REQUIRE(eventually([&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:m:t"}) == 1; }));
  a_bus.publish({.topic = "t", .payload = "from a", .fence = a.fence()}, "feed");
  REQUIRE(eventually([&] { return got.size() == 1; }));
  // B stays standby while A renews (several ttls).
  std::this_thread::sleep_for(1200ms);
  CHECK(!b.leader());
  CHECK(a.leader());

  // A "pauses" (its loop stops, as under SIGSTOP): B takes over after about the ttl.
  a_loop.pause();
  REQUIRE(eventually([&] { return b.leader(); }, 5s));
  CHECK(b.fence() > first);
  // A wakes up: it learns it lost (its deadline passed), and anything it still publishes with its old
  // fencing number is refused by Redis, so the edge never sees it.
  a_bus.publish({.topic = "t", .payload = "late from a", .fence = first}, "feed");
  a_loop.run();
  CHECK(eventually([&] { return !a.leader() && fenced_at == first; }));
  CHECK(eventually([&] { return a_bus.stats().publish_fenced == 1; }));
  std::this_thread::sleep_for(100ms);
  CHECK(got.size() == 1);

  // A clean stop releases the lease at once: A (standby again) takes over with a higher number.
  std::promise<void> released;
  b_loop.sync([&] { b.stop([&] { released.set_value(); }); });
  released.get_future().wait();
  CHECK(!b.leader());
  REQUIRE(eventually([&] { return a.leader(); }, 5s));
  CHECK(a.fence() > first + 1);
  a_loop.pause();
  b_loop.pause();
}

TEST_CASE("redis bus: interest that comes back resumes from the resume point when little was missed") {
  fanout_test::RedisServer redis;
  Loop loop;
  auto o = bus_options(redis.port());
  o.catch_up_batch = 100;
  fanout::RedisBus ingest(loop.io, o);
  fanout::RedisBus edge(loop.io, o);
  Received got;
  std::atomic<std::uint64_t> resume_at{0};
  edge.set_handler([&](const fanout::BusMessage& m) { got.add(m); });
  edge.set_resume_point([&](std::string_view) { return resume_at.load(); });
  ingest.start();
  edge.start();
  PauseAtExit loop_guard{loop};
  loop.run();
  auto numsub = [&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:m:t"}); };
  REQUIRE(eventually([&] { return ingest.connected(); }));
  for (int i = 0; i < 10; ++i) ingest.publish({.topic = "t", .payload = "x"}, "feed");
  REQUIRE(eventually([&] { return ingest.stats().published == 10; }));
  // This node had seq 4: 5..10 come from the stream, then live ones.
  resume_at = 4;
  edge.subscribe("t");
  REQUIRE(eventually([&] { return numsub() == 1; }));
  ingest.publish({.topic = "t", .payload = "x"}, "feed");
  REQUIRE(eventually([&] { return got.size() == 7; }));
  CHECK(consecutive(got.seqs("t"), 5, 11));
  edge.unsubscribe("t");
  REQUIRE(eventually([&] { return numsub() == 0; }));
  // Too much missed (more than one batch): it starts live instead of replaying the past.
  for (int i = 0; i < 200; ++i) ingest.publish({.topic = "t", .payload = "x"}, "feed");
  REQUIRE(eventually([&] { return ingest.stats().published == 211; }));
  resume_at = 11;
  edge.subscribe("t");
  REQUIRE(eventually([&] { return numsub() == 1; }));
  std::this_thread::sleep_for(200ms);
  ingest.publish({.topic = "t", .payload = "x"}, "feed");
  REQUIRE(eventually([&] { return got.size() == 8; }));
  CHECK(got.seqs("t").back() == 212);
  loop.pause();
}

TEST_CASE("redis bus: publishing while Redis is down is dropped and counted, never blocks") {
  Loop loop;
  fanout::RedisBus bus(loop.io, bus_options(fanout_test::free_port()));  // nobody listens there
  bus.start();
  PauseAtExit loop_guard{loop};
  loop.run();
  for (int i = 0; i < 1000; ++i) bus.publish({.topic = "t", .payload = "x"}, "feed");
  CHECK(eventually([&] { return bus.stats().publish_dropped == 1000; }));
  CHECK(!bus.connected());
  loop.pause();
}

TEST_CASE("redis lease: bad settings are refused") {
  asio::io_context io;
  CHECK_THROWS_AS(fanout::RedisLease(io, {.ttl = 50ms}, {}), std::invalid_argument);
  CHECK_THROWS_AS(fanout::RedisLease(io, {.ttl = 1s, .renew_interval = 2s}, {}), std::invalid_argument);
}
#endif

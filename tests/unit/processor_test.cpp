// Processor: per-topic order under concurrency, throwing handlers, both overflow policies, per-worker state.
#include <doctest/doctest.h>

#include <fanout/processor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Processor = fanout::Processor;

// What the publish function saw, per topic, in order.
struct Published {
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> by_topic;
  std::size_t total = 0;
  void add(const Processor::Output::Item& o) {
    std::lock_guard lock(mutex);
    by_topic[o.topic].push_back(o.payload);
    ++total;
  }
};

// A gate handlers wait on, so a test can hold a worker busy.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void pass() {
    std::unique_lock lock(mutex);
    ++waiting;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void wait_for_waiter() {
    std::unique_lock lock(mutex);
    REQUIRE(cv.wait_for(lock, 20s, [&] { return waiting > 0; }));
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    cv.notify_all();
  }
};

template <class Pred>
bool eventually(Pred p) {
  for (int i = 0; i < 4000; ++i) {
    if (p()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return p();
}

}  // namespace

TEST_CASE("processor: order per topic is kept with several workers, many topics and two submitters") {
  Published out;
  constexpr int k_topics = 64, k_per_topic = 500;
  Processor p({.workers = 4, .max_queued = 64, .overflow = Processor::Overflow::block},
              Processor::Handler([](const Processor::Message& m, Processor::Output& o) {
                o.forward(m);
                o.emit("derived:" + m.topic, m.payload);  // a second output, published right after
              }),
              [&](const Processor::Output::Item& o) { out.add(o); });
  p.start();
  // Each submitter owns half of the topics (order is defined per submitting thread).
  auto submit = [&](int first) {
    for (int i = 0; i < k_per_topic; ++i)
      for (int t = first; t < k_topics; t += 2)
        p.submit({.topic = "topic" + std::to_string(t), .payload = std::to_string(i), .seq = std::uint64_t(i)});
  };
  std::thread a(submit, 0), b(submit, 1);
  a.join();
  b.join();
  p.stop();
  CHECK(out.total == 2 * k_topics * k_per_topic);
  for (int t = 0; t < k_topics; ++t) {
    for (auto name : {"topic" + std::to_string(t), "derived:topic" + std::to_string(t)}) {
      const auto& seen = out.by_topic[name];
      REQUIRE(seen.size() == k_per_topic);
      for (int i = 0; i < k_per_topic; ++i) CHECK(seen[i] == std::to_string(i));
    }
  }
  const auto st = p.stats();
  CHECK(st.submitted == k_topics * k_per_topic);
  CHECK(st.processed == k_topics * k_per_topic);
  CHECK(st.emitted == 2 * k_topics * k_per_topic);
  CHECK(st.dropped == 0);
  CHECK(st.errors == 0);
  CHECK(st.queued == 0);
}

TEST_CASE("processor: a throwing handler is counted and reported; the worker carries on") {
  Published out;
  std::atomic<int> reports{0};
  Processor p({.workers = 2,
               .on_error =
                   [&](std::string_view msg) {
                     CHECK(msg.find("odd payload") != std::string_view::npos);
                     ++reports;
                   }},
              Processor::Handler([](const Processor::Message& m, Processor::Output& o) {
                if (std::stoi(m.payload) % 2) {
                  o.emit("partial", m.payload);  // emitted before the throw: still published
                  throw std::runtime_error("odd payload");
                }
                o.forward(m);
              }),
              [&](const Processor::Output::Item& o) { out.add(o); });
  p.start();
  for (int i = 0; i < 1000; ++i) p.submit({.topic = "t" + std::to_string(i % 3), .payload = std::to_string(i)});
  p.stop();
  const auto st = p.stats();
  CHECK(st.errors == 500);
  CHECK(st.processed == 500);
  CHECK(st.emitted == 1000);
  CHECK(out.by_topic["partial"].size() == 500);
  for (auto& s : out.by_topic["partial"]) CHECK(std::stoi(s) % 2 == 1);
  for (int t = 0; t < 3; ++t)
    for (auto& s : out.by_topic["t" + std::to_string(t)]) CHECK(std::stoi(s) % 2 == 0);
  CHECK(reports >= 1);  // rate-limited: at least the first
}

TEST_CASE("processor: a throwing publish function is counted too") {
  Processor p({.workers = 1, .on_error = [](std::string_view) {}},
              Processor::Handler([](const Processor::Message& m, Processor::Output& o) { o.forward(m); }),
              [](const Processor::Output::Item&) { throw std::runtime_error("hub gone"); });
  p.start();
  p.submit({.topic = "t", .payload = "x"});
  p.stop();
  CHECK(p.stats().errors == 1);
  CHECK(p.stats().emitted == 0);
}

TEST_CASE("processor: drop_oldest discards the oldest queued messages of a busy worker, counted") {
  Published out;
  Gate gate;
  Processor p({.workers = 1, .max_queued = 5, .overflow = Processor::Overflow::drop_oldest},
              Processor::Handler([&](const Processor::Message& m, Processor::Output& o) {
                if (m.payload == "first") gate.pass();
                o.forward(m);
              }),
              [&](const Processor::Output::Item& o) { out.add(o); });
  p.start();
  p.submit({.topic = "t", .payload = "first"});
  gate.wait_for_waiter();
  for (int i = 0; i < 100; ++i) CHECK(p.submit({.topic = "t", .payload = std::to_string(i)}));
  CHECK(p.stats().queued == 5);
  CHECK(p.stats().dropped == 95);
  gate.release();
  p.stop();
  CHECK(out.by_topic["t"] == std::vector<std::string>{"first", "95", "96", "97", "98", "99"});
}

TEST_CASE("processor: block makes submit wait for room instead of dropping") {
  Published out;
  Gate gate;
  Processor p({.workers = 1, .max_queued = 3, .overflow = Processor::Overflow::block},
              Processor::Handler([&](const Processor::Message& m, Processor::Output& o) {
                if (m.payload == "0") gate.pass();
                o.forward(m);
              }),
              [&](const Processor::Output::Item& o) { out.add(o); });
  p.start();
  std::atomic<int> submitted{0};
  std::thread producer([&] {
    for (int i = 0; i < 50; ++i) {
      p.submit({.topic = "t", .payload = std::to_string(i)});
      ++submitted;
    }
  });
  gate.wait_for_waiter();
  // "0" is in the handler, 3 are queued; the producer is stuck in its 5th submit.
  // (The producer may have blocked once before the worker took "0": wait for it to settle.)
  CHECK(eventually([&] { return p.stats().blocked >= 1 && submitted == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(submitted == 4);
  gate.release();
  producer.join();
  p.stop();
  const auto st = p.stats();
  CHECK(st.dropped == 0);
  CHECK(st.processed == 50);
  REQUIRE(out.by_topic["t"].size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(out.by_topic["t"][i] == std::to_string(i));
}

TEST_CASE("processor: stop releases a blocked submit, which reports the message as not queued") {
  Gate gate;
  Processor p({.workers = 1, .max_queued = 1, .overflow = Processor::Overflow::block},
              Processor::Handler([&](const Processor::Message& m, Processor::Output&) {
                if (m.payload == "hold") gate.pass();
              }),
              [](const Processor::Output::Item&) {});
  p.start();
  p.submit({.topic = "t", .payload = "hold"});
  gate.wait_for_waiter();
  p.submit({.topic = "t", .payload = "queued"});
  std::atomic<int> result{-1};
  std::thread producer([&] { result = p.submit({.topic = "t", .payload = "blocked"}) ? 1 : 0; });
  CHECK(eventually([&] { return p.stats().blocked >= 1; }));
  std::thread stopper([&] { p.stop(); });
  CHECK(eventually([&] { return result != -1; }));
  CHECK(result == 0);
  gate.release();
  stopper.join();
  producer.join();
  CHECK(p.stats().processed == 2);
  CHECK(!p.submit({.topic = "t", .payload = "after stop"}));
}

TEST_CASE("processor: each worker has its own handler; a topic always meets the same one") {
  std::mutex mutex;
  std::map<std::string, std::set<std::size_t>> workers_of_topic;
  Processor p({.workers = 3}, Processor::HandlerFactory([&](std::size_t index) {
                return [&, index, count = 0](const Processor::Message& m, Processor::Output& o) mutable {
                  ++count;  // state of this worker only
                  CHECK(o.worker() == index);
                  std::lock_guard lock(mutex);
                  workers_of_topic[m.topic].insert(index);
                };
              }),
              [](const Processor::Output::Item&) {});
  p.start();
  for (int i = 0; i < 3000; ++i) p.submit({.topic = "t" + std::to_string(i % 30), .payload = "x"});
  p.stop();
  REQUIRE(workers_of_topic.size() == 30);
  std::set<std::size_t> used;
  for (auto& [topic, ws] : workers_of_topic) {
    CHECK(ws.size() == 1);
    CHECK(*ws.begin() == p.worker_of(topic));
    used.insert(*ws.begin());
  }
  CHECK(used.size() == 3);
}

TEST_CASE("processor: bad options are refused") {
  auto h = Processor::Handler([](const Processor::Message&, Processor::Output&) {});
  auto pub = [](const Processor::Output::Item&) {};
  CHECK_THROWS_AS(Processor({.workers = 0}, h, pub), std::invalid_argument);
  CHECK_THROWS_AS(Processor({.max_queued = 0}, h, pub), std::invalid_argument);
  CHECK_THROWS_AS(Processor({}, Processor::Handler{}, pub), std::invalid_argument);
}

// Sink and SinkSet: queueing, batching, drops, retries and stop, with writers that stall and fail on demand.
#include <doctest/doctest.h>

#include <fanout/sink.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

// Records what it stores; can be held (blocks inside write until released) and made to fail.
class ScriptedWriter : public fanout::SinkWriter {
 public:
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::string> stored;  // payloads, in write order
    std::vector<std::size_t> batch_sizes;
    bool hold = false;
    int in_write = 0;
    int transient_failures = 0;  // the next N writes answer retry
    int permanent_failures = 0;  // the next N writes answer fail
    bool throw_next = false;
    std::atomic<int> interrupts{0};
    bool closed = false;
  };
  explicit ScriptedWriter(std::shared_ptr<State> s) : s_(std::move(s)) {}
  fanout::WriteResult write(std::span<const fanout::SinkRecordRef> batch) override {
    std::unique_lock lock(s_->mutex);
    ++s_->in_write;
    s_->cv.notify_all();
    s_->cv.wait(lock, [&] { return !s_->hold || s_->interrupts > 0; });
    --s_->in_write;
    if (s_->interrupts > 0 && s_->hold) return fanout::WriteResult::retry("interrupted");
    if (s_->throw_next) {
      s_->throw_next = false;
      throw std::runtime_error("boom");
    }
    if (s_->transient_failures > 0) {
      --s_->transient_failures;
      return fanout::WriteResult::retry("transient");
    }
    if (s_->permanent_failures > 0) {
      --s_->permanent_failures;
      return fanout::WriteResult::fail("permanent");
    }
    for (auto& r : batch) s_->stored.push_back(r->payload);
    s_->batch_sizes.push_back(batch.size());
    return fanout::WriteResult::ok();
  }
  void interrupt() noexcept override {
    ++s_->interrupts;
    s_->cv.notify_all();
  }
  void close() noexcept override {
    std::lock_guard lock(s_->mutex);
    s_->closed = true;
  }

 private:
  std::shared_ptr<State> s_;
};

fanout::SinkRecordRef record(std::string topic, std::string payload, std::optional<std::uint64_t> seq = {}) {
  return std::make_shared<const fanout::SinkRecord>(
      fanout::SinkRecord{std::move(topic), std::move(payload), seq, std::chrono::system_clock::now()});
}

void wait_in_write(ScriptedWriter::State& s) {
  std::unique_lock lock(s.mutex);
  REQUIRE(s.cv.wait_for(lock, 20s, [&] { return s.in_write > 0; }));
}

void release(ScriptedWriter::State& s) {
  std::lock_guard lock(s.mutex);
  s.hold = false;
  s.cv.notify_all();
}

fanout::Sink::Options quiet(fanout::Sink::Options o) {
  o.on_error = [](std::string_view) {};
  return o;
}

}  // namespace

TEST_CASE("sink: every offered record is written, in order, in batches") {
  auto state = std::make_shared<ScriptedWriter::State>();
  fanout::Sink sink(std::make_unique<ScriptedWriter>(state), quiet({.max_batch = 64}));
  sink.start();
  for (int i = 0; i < 5000; ++i) CHECK(sink.offer(record("t", std::to_string(i))));
  sink.stop();
  REQUIRE(state->stored.size() == 5000);
  for (int i = 0; i < 5000; ++i) CHECK(state->stored[i] == std::to_string(i));
  for (auto n : state->batch_sizes) CHECK(n <= 64);
  const auto st = sink.stats();
  CHECK(st.offered == 5000);
  CHECK(st.written == 5000);
  CHECK(st.dropped == 0);
  CHECK(st.failed == 0);
  CHECK(st.queued == 0);
  CHECK(st.batches == state->batch_sizes.size());
  CHECK(state->closed);
}

TEST_CASE("sink: a stalled writer makes offers drop, counted, without blocking; written + dropped = offered") {
  auto state = std::make_shared<ScriptedWriter::State>();
  state->hold = true;
  fanout::Sink sink(std::make_unique<ScriptedWriter>(state), quiet({.max_queued = 10, .max_batch = 4}));
  sink.start();
  CHECK(sink.offer(record("t", "first")));
  wait_in_write(*state);  // "first" is in the writer, which is stuck
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) accepted += sink.offer(record("t", std::to_string(i)));
  CHECK(accepted == 10);
  auto st = sink.stats();
  CHECK(st.queued == 10);
  CHECK(st.dropped == 990);
  release(*state);
  sink.stop();
  st = sink.stats();
  CHECK(st.written == 11);
  CHECK(st.written + st.dropped == st.offered);
  // drop_newest keeps what was queued first
  REQUIRE(state->stored.size() == 11);
  CHECK(state->stored[1] == "0");
  CHECK(state->stored[10] == "9");
}

TEST_CASE("sink: drop_oldest keeps the newest records") {
  auto state = std::make_shared<ScriptedWriter::State>();
  state->hold = true;
  fanout::Sink sink(std::make_unique<ScriptedWriter>(state),
                    quiet({.max_queued = 5, .overflow = fanout::Sink::Overflow::drop_oldest}));
  sink.start();
  sink.offer(record("t", "first"));
  wait_in_write(*state);
  for (int i = 0; i < 100; ++i) CHECK(sink.offer(record("t", std::to_string(i))));
  release(*state);
  sink.stop();
  REQUIRE(state->stored.size() == 6);
  CHECK(state->stored[1] == "95");
  CHECK(state->stored[5] == "99");
  CHECK(sink.stats().dropped == 95);
}

TEST_CASE("sink: the byte limit bounds the queue too") {
  auto state = std::make_shared<ScriptedWriter::State>();
  state->hold = true;
  fanout::Sink sink(std::make_unique<ScriptedWriter>(state), quiet({.max_queued_bytes = 1000}));
  sink.start();
  sink.offer(record("t", "first"));
  wait_in_write(*state);
  int accepted = 0;
  for (int i = 0; i < 100; ++i) accepted += sink.offer(record("t", std::string(99, 'x')));  // 100 bytes each
  CHECK(accepted == 10);
  CHECK(sink.stats().queued_bytes == 1000);
  release(*state);
  sink.stop();
}

TEST_CASE("sink: transient errors are retried until the batch is written") {
  auto state = std::make_shared<ScriptedWriter::State>();
  state->transient_failures = 3;
  fanout::Sink sink(std::make_unique<ScriptedWriter>(state),
                    quiet({.retry_initial = std::chrono::milliseconds(1), .retry_max = std::chrono::milliseconds(5)}));
  sink.start();
  for (int i = 0; i < 3; ++i) sink.offer(record("t", std::to_string(i)));
  sink.stop();
  const auto st = sink.stats();
  CHECK(st.errors == 3);
  CHECK(st.retries == 3);
  CHECK(st.written == 3);
  CHECK(st.failed == 0);
  CHECK(state->stored.size() == 3);
}

TEST_CASE("sink: a permanent error, a throwing writer and exhausted attempts lose the batch, counted") {
  auto state = std::make_shared<ScriptedWriter::State>();
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  fanout::Sink::Options o{.max_batch = 1, .retry_initial = std::chrono::milliseconds(1), .max_attempts = 2};
  o.on_error = [&](std::string_view e) {
    std::lock_guard lock(errors_mutex);
    errors.emplace_back(e);
  };
  state->hold = true;
  fanout::Sink sink(std::make_unique<ScriptedWriter>(state), o);
  sink.start();
  sink.offer(record("t", "a"));  // its write throws
  wait_in_write(*state);
  sink.offer(record("t", "b"));  // answers retry twice: attempts exhausted
  sink.offer(record("t", "c"));  // answers fail
  sink.offer(record("t", "d"));  // written
  {
    std::lock_guard lock(state->mutex);
    state->throw_next = true;
    state->transient_failures = 2;
    state->permanent_failures = 1;
    state->hold = false;
    state->cv.notify_all();
  }
  sink.stop();
  const auto st = sink.stats();
  CHECK(st.failed == 3);
  CHECK(st.written == 1);
  REQUIRE(state->stored.size() == 1);
  CHECK(state->stored[0] == "d");
  std::lock_guard lock(errors_mutex);
  REQUIRE(!errors.empty());
  CHECK(errors.front().find("boom") != std::string::npos);  // later ones within a second are rate-limited
}

TEST_CASE("sink: stop gives up after stop_timeout, interrupts the stuck write and counts what is left") {
  auto state = std::make_shared<ScriptedWriter::State>();
  state->hold = true;
  fanout::Sink sink(std::make_unique<ScriptedWriter>(state),
                    quiet({.max_batch = 1, .stop_timeout = std::chrono::milliseconds(100)}));
  sink.start();
  sink.offer(record("t", "stuck"));
  wait_in_write(*state);
  for (int i = 0; i < 7; ++i) sink.offer(record("t", std::to_string(i)));
  sink.stop();  // returns although the writer never releases on its own
  CHECK(state->interrupts >= 1);
  const auto st = sink.stats();
  CHECK(st.written == 0);
  CHECK(st.failed == 8);
  CHECK(!sink.offer(record("t", "late")));
}

TEST_CASE("sink: topic filter, exact and prefix; SinkSet shares one record between sinks") {
  auto a = std::make_shared<ScriptedWriter::State>();
  auto b = std::make_shared<ScriptedWriter::State>();
  fanout::SinkSet set;
  set.add(std::make_unique<ScriptedWriter>(a), quiet({.name = "a", .topics = {"trades:*", "tickers:BTC"}}));
  set.add(std::make_unique<ScriptedWriter>(b), quiet({.name = "b"}));
  CHECK(set[0].wants("trades:ETH"));
  CHECK(set[0].wants("tickers:BTC"));
  CHECK(!set[0].wants("tickers:BTC2"));
  CHECK(!set[0].wants("bars:BTC"));
  set.start();
  set.offer("trades:ETH", "1", 7);
  set.offer("tickers:ETH", "2");
  set.offer("tickers:BTC", "3");
  set.stop();
  CHECK(a->stored == std::vector<std::string>{"1", "3"});
  CHECK(b->stored == std::vector<std::string>{"1", "2", "3"});
  CHECK(set[0].stats().offered == 2);
  CHECK(set[1].stats().offered == 3);
}

TEST_CASE("sink: bad options are refused") {
  auto state = std::make_shared<ScriptedWriter::State>();
  CHECK_THROWS_AS(fanout::Sink(nullptr, {}), std::invalid_argument);
  CHECK_THROWS_AS(fanout::Sink(std::make_unique<ScriptedWriter>(state), {.max_queued = 0}), std::invalid_argument);
  CHECK_THROWS_AS(fanout::Sink(std::make_unique<ScriptedWriter>(state), {.topics = {""}}), std::invalid_argument);
}

TEST_CASE("sink: a full queue spills to another sink instead of dropping; spill_only sinks get nothing else") {
  auto db = std::make_shared<ScriptedWriter::State>();
  auto disk = std::make_shared<ScriptedWriter::State>();
  db->hold = true;
  fanout::SinkSet set;
  auto& primary = set.add(std::make_unique<ScriptedWriter>(db), quiet({.name = "db", .max_queued = 5}));
  auto& spill = set.add(std::make_unique<ScriptedWriter>(disk), quiet({.name = "disk", .spill_only = true}));
  primary.spill_to(spill);
  CHECK_THROWS_AS(spill.spill_to(primary), std::logic_error);
  set.start();
  set.offer("t", "first");
  wait_in_write(*db);
  for (int i = 0; i < 100; ++i) set.offer("t", std::to_string(i));
  auto st = primary.stats();
  CHECK(st.spilled == 95);
  CHECK(st.dropped == 0);
  CHECK(st.queued == 5);
  release(*db);
  set.stop();
  st = primary.stats();
  CHECK(st.written == 6);
  CHECK(st.offered == st.written + st.spilled);
  CHECK(spill.stats().offered == 95);
  REQUIRE(disk->stored.size() == 95);
  CHECK(disk->stored.front() == "5");
  CHECK(disk->stored.back() == "99");
}

TEST_CASE("sink: drop_oldest spills the evicted records, in order") {
  auto db = std::make_shared<ScriptedWriter::State>();
  auto disk = std::make_shared<ScriptedWriter::State>();
  db->hold = true;
  fanout::Sink spill(std::make_unique<ScriptedWriter>(disk), quiet({.spill_only = true}));
  fanout::Sink primary(std::make_unique<ScriptedWriter>(db),
                       quiet({.max_queued = 3, .overflow = fanout::Sink::Overflow::drop_oldest}));
  primary.spill_to(spill);
  spill.start();
  primary.start();
  primary.offer(record("t", "first"));
  wait_in_write(*db);
  for (int i = 0; i < 10; ++i) CHECK(primary.offer(record("t", std::to_string(i))));
  release(*db);
  primary.stop();
  spill.stop();
  CHECK(db->stored == std::vector<std::string>{"first", "7", "8", "9"});
  CHECK(disk->stored == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6"});
  CHECK(primary.stats().spilled == 7);
}

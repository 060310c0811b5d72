// Reconnect advice: the jitter's bounds, Retry-After's rounding, and the close reason's form and size.
#include <doctest/doctest.h>

#include <fanout/detail/retry_advice.hpp>
#include <fanout/frame.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

using namespace std::chrono_literals;
using fanout::detail::jittered;
using fanout::detail::retry_after_seconds;
using fanout::detail::retry_close_reason;

TEST_CASE("retry advice: uniform in [x (1 - jitter), x], and spread") {
  std::set<long long> seen;
  for (int i = 0; i < 2000; ++i) {
    const auto d = jittered(10s, 0.5);
    CHECK(d >= 5s);
    CHECK(d <= 10s);
    seen.insert(d.count());
  }
  CHECK(seen.size() > 100);  // clients turned away together do not come back together
  CHECK(jittered(10s, 0) == 10s);
  const auto full = jittered(1s, 1.0);
  CHECK(full >= 0ms);
  CHECK(full <= 1s);
  CHECK(jittered(1s, 7.0) <= 1s);  // clamped
  CHECK(jittered(0ms, 0.5) == 0ms);
}

TEST_CASE("retry advice: Retry-After is whole seconds rounded up, at least 1") {
  for (int i = 0; i < 200; ++i) {
    const auto s = retry_after_seconds(4s, 0.5);
    CHECK(s >= 2);
    CHECK(s <= 4);
  }
  CHECK(retry_after_seconds(1500ms, 0) == 2);
  CHECK(retry_after_seconds(0ms, 0.5) == 1);
}

TEST_CASE("retry advice: the close reason is JSON that fits a close frame") {
  CHECK(retry_close_reason("draining", 4321ms) == R"({"reason":"draining","retry_after_ms":4321})");
  const auto longest = retry_close_reason(std::string(200, 'x'), std::chrono::milliseconds(INT64_MAX));
  CHECK(longest.size() <= 123);
  // A close frame keeps it whole: 2 bytes of code + the reason, at most 125.
  const auto frame = fanout::Frame::make_close(1012, retry_close_reason("overload", 10000ms));
  CHECK(frame->size() == 2 + 2 + retry_close_reason("overload", 10000ms).size());
}

// TimerWheel: deadlines fire at their tick, in turns beyond the wheel's span, and survive
// rescheduling and cancelling from inside a firing (timer_wheel.hpp). Ticks are driven by hand.
#include <doctest/doctest.h>

#include "fanout/detail/timer_wheel.hpp"

#include <memory>
#include <vector>

using fanout::detail::TimerWheel;
using fanout::detail::WheelEntry;

namespace {
struct Named : WheelEntry {
  explicit Named(int n) : id(n) {}
  int id;
};
std::vector<int> advance(TimerWheel& w, std::uint64_t to) {
  std::vector<int> fired;
  w.advance(to, [&](WheelEntry& e) { fired.push_back(static_cast<Named&>(e).id); });
  return fired;
}
}  // namespace

TEST_CASE("timer wheel: an entry fires once, at its tick, not before") {
  TimerWheel w(16);
  Named a(1), b(2);
  w.schedule(a, 5);
  w.schedule(b, 3);
  CHECK(w.size() == 2);
  CHECK(w.next_wake() == 3u);
  CHECK(advance(w, 2).empty());
  CHECK(advance(w, 3) == std::vector<int>{2});
  CHECK_FALSE(b.scheduled());
  CHECK(advance(w, 4).empty());
  CHECK(advance(w, 9) == std::vector<int>{1});
  CHECK(w.empty());
  CHECK_FALSE(w.next_wake());
  CHECK(advance(w, 100).empty());
}

TEST_CASE("timer wheel: a deadline beyond one turn waits whole turns, then fires on time") {
  TimerWheel w(8);
  Named far(1), near(2);
  w.schedule(far, 8 * 3 + 2);  // the same slot as tick 2, three turns later
  w.schedule(near, 2);
  CHECK(advance(w, 2) == std::vector<int>{2});
  CHECK(advance(w, 10).empty());  // slot 2 visited again: not due yet
  CHECK(advance(w, 25).empty());
  CHECK(advance(w, 26) == std::vector<int>{1});
}

TEST_CASE("timer wheel: a jump over several turns fires everything due, once each") {
  TimerWheel w(8);
  std::vector<std::unique_ptr<Named>> all;
  for (int i = 1; i <= 20; ++i) {
    all.push_back(std::make_unique<Named>(i));
    w.schedule(*all.back(), static_cast<std::uint64_t>(i));
  }
  const auto fired = advance(w, 100);
  CHECK(fired.size() == 20);
  CHECK(w.empty());
}

TEST_CASE("timer wheel: a deadline in the past fires at the next tick; scheduling again moves it") {
  TimerWheel w(16);
  CHECK(advance(w, 10).empty());
  Named a(1);
  w.schedule(a, 4);
  CHECK(a.due() == 11);
  w.schedule(a, 14);  // rescheduled, not added twice
  CHECK(w.size() == 1);
  CHECK(advance(w, 13).empty());
  CHECK(advance(w, 14) == std::vector<int>{1});
}

TEST_CASE("timer wheel: cancel takes an entry out; cancelling twice is harmless") {
  TimerWheel w(16);
  Named a(1), b(2);
  w.schedule(a, 3);
  w.schedule(b, 3);
  w.cancel(a);
  w.cancel(a);
  CHECK(w.size() == 1);
  CHECK(advance(w, 3) == std::vector<int>{2});
}

TEST_CASE("timer wheel: firing may reschedule itself and cancel an entry still waiting to fire") {
  TimerWheel w(4);
  Named a(1), b(2), c(3);
  w.schedule(a, 2);
  w.schedule(b, 2);
  w.schedule(c, 2);
  std::vector<int> fired;
  w.advance(2, [&](WheelEntry& e) {
    auto& n = static_cast<Named&>(e);
    fired.push_back(n.id);
    if (n.id == 1) {
      w.cancel(b);       // b waits in the same slot: it must not fire now
      w.schedule(n, 6);  // a turn later, into this very slot
    }
  });
  CHECK(fired == std::vector<int>{1, 3});
  CHECK(a.scheduled());
  CHECK_FALSE(b.scheduled());
  CHECK(advance(w, 5).empty());
  CHECK(advance(w, 6) == std::vector<int>{1});
}

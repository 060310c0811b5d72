// UpstreamFsm without sockets or sleeps: a fake clock, a scripted random source, and the actions.
#include <doctest/doctest.h>

#include <fanout/detail/upstream_fsm.hpp>
#include <fanout/error.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using Fsm = fanout::detail::UpstreamFsm;
using Kind = Fsm::Action::Kind;
using Phase = Fsm::Phase;

namespace {

Fsm::TimePoint t0() { return Fsm::TimePoint{} + 1h; }

const Fsm::Action* find(const Fsm::Actions& as, Kind k) {
  for (const auto& a : as)
    if (a.kind == k) return &a;
  return nullptr;
}

std::vector<Kind> kinds(const Fsm::Actions& as) {
  std::vector<Kind> v;
  for (const auto& a : as) v.push_back(a.kind);
  return v;
}

Fsm::Config config() {
  Fsm::Config c;
  c.endpoints = 1;
  c.connect_timeout = 1s;
  c.backoff_initial = 100ms;
  c.backoff_max = 1s;
  c.jitter = 0;
  c.stable_after = 5s;
  return c;
}

/// Runs one attempt up to live.
void go_live(Fsm& f, Fsm::TimePoint now) {
  f.connected(now);
  f.handshake_done(now);
  REQUIRE(f.phase() == Phase::live);
}

}  // namespace

TEST_CASE("fanout::Errc is an error_code enum of the fanout category") {
  std::error_code ec = fanout::Errc::stale_stream;
  CHECK(ec.category() == fanout::category());
  CHECK(std::string(ec.category().name()) == "fanout");
  CHECK(ec == fanout::Errc::stale_stream);
  CHECK(ec != fanout::Errc::connect_timeout);
  CHECK(ec.message().find("stale") != std::string::npos);
  for (auto e : {fanout::Errc::connect_timeout, fanout::Errc::handshake_rejected, fanout::Errc::bad_handshake_response,
                 fanout::Errc::upstream_closed, fanout::Errc::inflate_error, fanout::Errc::max_attempts_reached})
    CHECK(fanout::make_error_code(e).message() != "unknown fanout error");
}

TEST_CASE("UpstreamFsm: start connects, then handshake, then live with subscribe") {
  Fsm f(config());
  auto now = t0();
  auto a = f.start(now);
  CHECK(kinds(a) == std::vector{Kind::state, Kind::connect});
  CHECK(a[0].phase == Phase::connecting);
  CHECK(f.next_deadline() == now + 1s);  // the connect timeout
  CHECK(kinds(f.connected(now)) == std::vector{Kind::send_handshake});
  CHECK(f.phase() == Phase::handshaking);
  a = f.handshake_done(now + 10ms);
  CHECK(kinds(a) == std::vector{Kind::state, Kind::subscribe, Kind::connected});
  CHECK(f.phase() == Phase::live);
  CHECK(f.start(now).empty());  // already running
  // Out-of-order inputs are ignored.
  CHECK(f.connected(now).empty());
  CHECK(f.handshake_done(now).empty());
}

TEST_CASE("UpstreamFsm: backoff grows exponentially and caps at backoff_max") {
  auto c = config();
  c.connect_timeout = 0ms;  // none: only the retry deadline matters here
  Fsm f(c);
  auto now = t0();
  f.start(now);
  std::vector<long> delays;
  for (int i = 0; i < 7; ++i) {
    auto a = f.failed(now, std::make_error_code(std::errc::connection_refused));
    const auto* s = find(a, Kind::state);
    REQUIRE(s);
    CHECK(s->phase == Phase::backing_off);
    CHECK(s->error == std::errc::connection_refused);
    delays.push_back(static_cast<long>(s->delay.count()));
    CHECK(f.next_deadline() == now + s->delay);
    now += s->delay;
    CHECK(kinds(f.timer(now)) == std::vector{Kind::state, Kind::connect});
  }
  CHECK(delays == std::vector<long>{100, 200, 400, 800, 1000, 1000, 1000});
  CHECK(f.failures_in_row() == 7);
}

TEST_CASE("UpstreamFsm: full jitter stays within [0, base] and follows the random source") {
  auto c = config();
  double r = 0;
  c.jitter = 1.0;
  c.random = [&] { return r; };
  Fsm f(c);
  for (double v : {0.0, 0.25, 0.5, 0.999}) {
    r = v;
    for (unsigned attempt = 1; attempt < 10; ++attempt) {
      const auto d = f.delay_for(attempt);
      const auto base = std::min<long>(100L << (attempt - 1), 1000);
      CHECK(d.count() >= 0);
      CHECK(d.count() <= base);
      CHECK(d.count() == static_cast<long>(static_cast<double>(base) * v));
    }
  }
  // Half jitter: [base/2, base].
  c.jitter = 0.5;
  r = 0;
  CHECK(Fsm(c).delay_for(2) == 100ms);
  r = 0.999;
  CHECK(Fsm(c).delay_for(2) >= 199ms);
}

TEST_CASE("UpstreamFsm: a custom delay replaces backoff and jitter") {
  auto c = config();
  std::vector<unsigned> asked;
  c.jitter = 1.0;
  c.random = [] { return 0.0; };
  c.custom_delay = [&](unsigned attempt) {
    asked.push_back(attempt);
    return std::chrono::milliseconds(attempt * 7);
  };
  Fsm f(c);
  auto now = t0();
  f.start(now);
  for (unsigned i = 1; i <= 3; ++i) {
    auto a = f.failed(now, fanout::Errc::connect_timeout);
    CHECK(find(a, Kind::state)->delay == std::chrono::milliseconds(i * 7));
    now = f.next_deadline();
    f.timer(now);
  }
  CHECK(asked == std::vector<unsigned>{1, 2, 3});
}

TEST_CASE("UpstreamFsm: failed attempts rotate over the endpoints in order; a stable connection stays") {
  auto c = config();
  c.endpoints = 3;
  Fsm f(c);
  auto now = t0();
  std::vector<std::size_t> tried;
  auto a = f.start(now);
  tried.push_back(find(a, Kind::connect)->url);
  for (int i = 0; i < 4; ++i) {
    f.failed(now, std::make_error_code(std::errc::connection_refused));
    now = f.next_deadline();
    a = f.timer(now);
    tried.push_back(find(a, Kind::connect)->url);
  }
  CHECK(tried == std::vector<std::size_t>{0, 1, 2, 0, 1});
  // Endpoint 1 works and stays up past stable_after: when it drops, it is tried again first.
  go_live(f, now);
  now += 6s;
  a = f.closed(now, fanout::Errc::upstream_closed);
  CHECK(f.url_index() == 1);
  CHECK(f.failures_in_row() == 1);
  CHECK(find(a, Kind::state)->delay == 100ms);  // the count started over
}

TEST_CASE("UpstreamFsm: a standby partner starts at its own endpoint and never moves onto a taken one") {
  // Two connections of a pair over endpoints {A=0, B=1}: the second starts at B. When A dies, the
  // first passes over B (its partner is live there) and keeps retrying A; once B is free again it
  // may move on to B.
  auto c = config();
  c.endpoints = 2;
  c.first_endpoint = 1;
  Fsm second(c);
  auto now = t0();
  CHECK(find(second.start(now), Kind::connect)->url == 1);

  bool b_taken = true;
  c.first_endpoint = 0;
  c.endpoint_taken = [&](std::size_t e) { return e == 1 && b_taken; };
  Fsm first(c);
  CHECK(find(first.start(now), Kind::connect)->url == 0);
  go_live(first, now);
  now += 6s;
  std::vector<std::size_t> tried;
  first.closed(now, fanout::Errc::upstream_closed);  // A went away
  for (int i = 0; i < 3; ++i) {
    now = first.next_deadline();
    tried.push_back(find(first.timer(now), Kind::connect)->url);
    first.failed(now, std::make_error_code(std::errc::connection_refused));
  }
  CHECK(tried == std::vector<std::size_t>{0, 0, 0});
  b_taken = false;  // the partner lost B too: any endpoint will do
  now = first.next_deadline();
  CHECK(find(first.timer(now), Kind::connect)->url == 0);
  first.failed(now, std::make_error_code(std::errc::connection_refused));
  now = first.next_deadline();
  CHECK(find(first.timer(now), Kind::connect)->url == 1);
  // One endpoint only: both connections of a pair share it.
  auto one = config();
  one.first_endpoint = 1;
  one.endpoint_taken = [](std::size_t) { return true; };
  Fsm single(one);
  CHECK(find(single.start(now), Kind::connect)->url == 0);
  single.failed(now, std::make_error_code(std::errc::connection_refused));
  CHECK(single.url_index() == 0);
}

TEST_CASE("UpstreamFsm: a server that accepts and closes at once still sees the backoff grow (F7)") {
  Fsm f(config());
  auto now = t0();
  f.start(now);
  std::vector<long> delays;
  for (int i = 0; i < 5; ++i) {
    go_live(f, now);
    now += 50ms;  // live, but far shorter than stable_after
    auto a = f.closed(now, fanout::Errc::upstream_closed);
    CHECK(find(a, Kind::disconnected));
    delays.push_back(static_cast<long>(find(a, Kind::state)->delay.count()));
    now = f.next_deadline();
    f.timer(now);
  }
  CHECK(delays == std::vector<long>{100, 200, 400, 800, 1000});
}

TEST_CASE("UpstreamFsm: connected first, then reconnected, with disconnected in between") {
  Fsm f(config());
  auto now = t0();
  f.start(now);
  f.connected(now);
  CHECK(find(f.handshake_done(now), Kind::connected));
  auto a = f.closed(now + 10s, fanout::Errc::upstream_closed);
  REQUIRE(find(a, Kind::disconnected));
  CHECK(find(a, Kind::disconnected)->error == fanout::Errc::upstream_closed);
  CHECK(a[0].kind == Kind::close);
  now = f.next_deadline();
  f.timer(now);
  f.connected(now);
  a = f.handshake_done(now);
  CHECK(find(a, Kind::reconnected));
  CHECK_FALSE(find(a, Kind::connected));
}

TEST_CASE("UpstreamFsm: connect timeout covers TCP, TLS and the upgrade") {
  Fsm f(config());
  auto now = t0();
  f.start(now);
  CHECK(f.timer(now + 999ms).empty());
  f.connected(now + 500ms);
  CHECK(f.next_deadline() == now + 1s);  // not moved by the TCP connect
  auto a = f.timer(now + 1s);
  CHECK(a[0].kind == Kind::close);
  CHECK(find(a, Kind::state)->error == fanout::Errc::connect_timeout);
  CHECK(f.phase() == Phase::backing_off);
}

TEST_CASE("UpstreamFsm: stale timeout ends a silent connection; messages push it back") {
  auto c = config();
  c.stale_timeout = 300ms;
  Fsm f(c);
  auto now = t0();
  f.start(now);
  go_live(f, now);
  CHECK(f.next_deadline() == now + 300ms);
  f.message(now + 200ms);
  CHECK(f.next_deadline() == now + 500ms);
  CHECK(f.timer(now + 300ms).empty());  // an early wake-up is harmless
  auto a = f.timer(now + 500ms);
  CHECK(find(a, Kind::close));
  CHECK(find(a, Kind::disconnected)->error == fanout::Errc::stale_stream);
  CHECK(find(a, Kind::state)->error == fanout::Errc::stale_stream);
  CHECK(f.phase() == Phase::backing_off);
  now = f.next_deadline();
  CHECK(find(f.timer(now), Kind::connect));  // and reconnects
}

TEST_CASE("UpstreamFsm: heartbeats are due every interval while live") {
  auto c = config();
  c.heartbeat_interval = 15s;
  Fsm f(c);
  auto now = t0();
  f.start(now);
  go_live(f, now);
  CHECK(f.next_deadline() == now + 15s);
  CHECK(f.timer(now + 14s).empty());
  CHECK(kinds(f.timer(now + 15s)) == std::vector{Kind::heartbeat});
  CHECK(f.next_deadline() == now + 30s);
  // After a stall the next one is an interval from now, not a burst.
  CHECK(kinds(f.timer(now + 100s)) == std::vector{Kind::heartbeat});
  CHECK(f.timer(now + 100s).empty());
  CHECK(f.next_deadline() == now + 115s);
}

TEST_CASE("UpstreamFsm: max_reconnect_attempts stops with max_attempts_reached") {
  auto c = config();
  c.max_reconnect_attempts = 2;
  Fsm f(c);
  auto now = t0();
  f.start(now);
  int attempts = 1;
  for (;;) {
    auto a = f.failed(now, std::make_error_code(std::errc::connection_refused));
    if (f.phase() == Phase::stopped) {
      CHECK(find(a, Kind::state)->error == fanout::Errc::max_attempts_reached);
      break;
    }
    now = f.next_deadline();
    f.timer(now);
    ++attempts;
  }
  CHECK(attempts == 3);  // the first attempt and two reconnects
  CHECK(f.next_deadline() == Fsm::TimePoint::max());
  CHECK(find(f.start(now), Kind::connect));  // start() begins afresh
  CHECK(f.failures_in_row() == 0);

  c.max_reconnect_attempts = 0;
  Fsm once(c);
  once.start(now);
  once.failed(now, fanout::Errc::handshake_rejected);
  CHECK(once.phase() == Phase::stopped);
}

TEST_CASE("UpstreamFsm: stop in every state") {
  auto c = config();
  c.stale_timeout = 1s;
  c.heartbeat_interval = 1s;
  const auto now = t0();
  auto stopped = [&](Fsm& f, bool closes) {
    auto a = f.stop(now);
    CHECK(f.phase() == Phase::stopped);
    CHECK(static_cast<bool>(find(a, Kind::close)) == closes);
    REQUIRE(find(a, Kind::state));
    CHECK(find(a, Kind::state)->phase == Phase::stopped);
    CHECK(f.next_deadline() == Fsm::TimePoint::max());
    CHECK(f.stop(now).empty());  // twice is fine
    // Late reports about the abandoned connection change nothing.
    CHECK(f.connected(now).empty());
    CHECK(f.handshake_done(now).empty());
    CHECK(f.failed(now, fanout::Errc::upstream_closed).empty());
    CHECK(f.timer(now + 1h).empty());
  };
  {
    Fsm f(c);
    CHECK(f.stop(now).empty());  // never started
  }
  {
    Fsm f(c);
    f.start(now);
    stopped(f, true);  // connecting
  }
  {
    Fsm f(c);
    f.start(now);
    f.connected(now);
    stopped(f, true);  // handshaking
  }
  {
    Fsm f(c);
    f.start(now);
    go_live(f, now);
    stopped(f, true);  // live
  }
  {
    Fsm f(c);
    f.start(now);
    f.failed(now, fanout::Errc::connect_timeout);
    REQUIRE(f.phase() == Phase::backing_off);
    stopped(f, false);  // backing off: nothing open
  }
}

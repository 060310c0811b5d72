#include <doctest/doctest.h>

#include <fanout/dedupe.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

using fanout::Dedupe;
using fanout::Routed;
using namespace std::chrono_literals;

namespace {

Routed with_seq(std::string topic, std::uint64_t seq) {
  return {.topic = std::move(topic), .key = std::nullopt, .seq = seq};
}
Routed no_seq(std::string topic, std::optional<std::string> key = std::nullopt) {
  return {.topic = std::move(topic), .key = std::move(key), .seq = std::nullopt};
}

}  // namespace

TEST_CASE("dedupe: the second copy of (topic, seq) is dropped") {
  Dedupe d;
  CHECK(d.first_time(with_seq("t", 1), "a"));
  CHECK(d.first_time(with_seq("t", 2), "b"));
  CHECK_FALSE(d.first_time(with_seq("t", 1), "a"));
  // The seq is the identity: a different payload with the same seq is still a duplicate.
  CHECK_FALSE(d.first_time(with_seq("t", 2), "different bytes"));
  CHECK(d.first_time(with_seq("t", 3), "c"));
  CHECK(d.duplicates() == 2);
}

TEST_CASE("dedupe: topics are independent") {
  Dedupe d;
  CHECK(d.first_time(with_seq("a", 1), "x"));
  CHECK(d.first_time(with_seq("b", 1), "x"));
  CHECK_FALSE(d.first_time(with_seq("a", 1), "x"));
  CHECK_FALSE(d.first_time(with_seq("b", 1), "x"));
  CHECK(d.duplicates() == 2);
}

TEST_CASE("dedupe: without seq the identity is key plus payload") {
  Dedupe d;
  CHECK(d.first_time(no_seq("t"), "payload-1"));
  CHECK_FALSE(d.first_time(no_seq("t"), "payload-1"));
  CHECK(d.first_time(no_seq("t"), "payload-2"));
  CHECK(d.first_time(no_seq("t", "BTC"), "payload-1"));  // same bytes, another key
  CHECK_FALSE(d.first_time(no_seq("t", "BTC"), "payload-1"));
  CHECK(d.first_time(no_seq("t", ""), "payload-1"));  // empty key differs from no key
  CHECK(d.first_time(no_seq("u"), "payload-1"));      // and another topic
  CHECK(d.duplicates() == 2);
}

TEST_CASE("dedupe: an identity evicted by count is accepted again") {
  Dedupe d({.window = 4});
  for (std::uint64_t s = 1; s <= 4; ++s) CHECK(d.first_time(with_seq("t", s), ""));
  CHECK_FALSE(d.first_time(with_seq("t", 1), ""));  // still in the window
  CHECK(d.first_time(with_seq("t", 5), ""));        // evicts 1
  CHECK(d.first_time(with_seq("t", 1), ""));        // forgotten, so new again (evicts 2)
  CHECK(d.first_time(with_seq("t", 2), ""));
  CHECK_FALSE(d.first_time(with_seq("t", 5), ""));
  CHECK(d.duplicates() == 2);
}

TEST_CASE("dedupe: identities older than max_age are forgotten") {
  Dedupe d({.max_age = 20ms});
  CHECK(d.first_time(with_seq("t", 1), ""));
  CHECK(d.first_time(no_seq("t"), "p"));
  std::this_thread::sleep_for(60ms);
  CHECK(d.first_time(with_seq("t", 1), ""));
  CHECK(d.first_time(no_seq("t"), "p"));
  CHECK(d.duplicates() == 0);

  // A huge max_age must not wrap the clock.
  Dedupe forever({.max_age = std::chrono::milliseconds::max()});
  CHECK(forever.first_time(with_seq("t", 1), ""));
  CHECK_FALSE(forever.first_time(with_seq("t", 1), ""));
}

TEST_CASE("dedupe: max_topics forgets the least recently used topic") {
  Dedupe d({.max_topics = 2});
  CHECK(d.first_time(with_seq("a", 1), ""));
  CHECK(d.first_time(with_seq("b", 1), ""));
  CHECK_FALSE(d.first_time(with_seq("a", 1), ""));  // touches a: b is now the oldest
  CHECK(d.first_time(with_seq("c", 1), ""));        // evicts b
  CHECK_FALSE(d.first_time(with_seq("a", 1), ""));
  CHECK_FALSE(d.first_time(with_seq("c", 1), ""));
  CHECK(d.first_time(with_seq("b", 1), ""));  // b was forgotten (evicts a, the least recent now)
  CHECK(d.first_time(with_seq("a", 1), ""));
}

TEST_CASE("dedupe: bad options throw") {
  CHECK_THROWS_AS(Dedupe({.window = 0}), std::invalid_argument);
  CHECK_THROWS_AS(Dedupe({.max_topics = 0}), std::invalid_argument);
}

// The window's index is hand-written (open addressing with backward-shift deletion): compare it
// with an obvious model over many insertions, lookups and evictions, across several topics.
TEST_CASE("dedupe: agrees with a simple model") {
  for (std::size_t window : {1u, 3u, 8u, 50u, 700u}) {
    CAPTURE(window);
    Dedupe d({.window = window, .max_age = std::chrono::hours(1)});
    std::map<std::string, std::deque<std::uint64_t>> model;
    std::mt19937_64 rng(window);
    std::uint64_t expected_dups = 0;
    for (int i = 0; i < 40'000; ++i) {
      const std::string topic = "t" + std::to_string(rng() % 3);
      // Mostly recent seqs (duplicates hit the window), sometimes far ones.
      const std::uint64_t seq = rng() % 4 == 0 ? rng() % 100'000 : rng() % (window * 2 + 3);
      auto& q = model[topic];
      const bool seen = std::find(q.begin(), q.end(), seq) != q.end();
      if (seen) {
        ++expected_dups;
      } else {
        q.push_back(seq);
        if (q.size() > window) q.pop_front();
      }
      REQUIRE(d.first_time(with_seq(topic, seq), "") == !seen);
    }
    CHECK(d.duplicates() == expected_dups);
    CHECK(expected_dups > 0);
  }
}

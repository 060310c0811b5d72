// Throttled delivery through a Hub and its shard (detail/throttle.hpp, lane.hpp): lanes per interval,
// their bound, the shard's bit while only throttled members remain, freeing with the last member, and
// one flush per tick for many members with the same interval, the newest frame per key, in seq order.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <fanout/detail/runtime_access.hpp>
#include <fanout/detail/shard.hpp>
#include <fanout/detail/topic.hpp>
#include <fanout/fanout.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace {

using fanout::detail::Group;
using fanout::detail::HubMembers;
using fanout::detail::Member;
using fanout::detail::Topic;

// A member as the core sees it: it records the frames it pulls, as a session queues them.
class Recorder : public Member {
 public:
  Recorder() { state_ = fanout::SessionState::open; }
  std::shared_ptr<Topic> topic;
  std::size_t index = 0;
  std::uint32_t interval_ms = 0;
  std::vector<std::uint64_t> seqs;
  std::vector<const fanout::Frame*> frames;

  void flush() override {
    Group& g = HubMembers::group_of(*topic, 0, interval_ms);
    fanout::BackpressureCounters c;
    if (g.flagged[index]) pull(*topic, g, index, c);
  }
  void pull(Topic&, Group& g, std::size_t i, fanout::BackpressureCounters&) override {
    for (const auto& p : g.after(g.cursor[i])) {
      seqs.push_back(p.frame->seq());
      frames.push_back(p.frame.get());
    }
    if (!g.after(g.cursor[i]).empty()) g.cursor[i] = g.log.back().frame->seq();
    if (g.flagged[i]) {
      --pulls_due_;
      g.unflag(i);
    }
  }
};

struct Rig {
  asio::io_context ioc;
  asio::io_context* contexts[1] = {&ioc};
  fanout::Runtime rt{std::span<asio::io_context* const>(contexts)};
  fanout::Hub hub;
  explicit Rig(fanout::Hub::Options o = {}) : hub(rt, std::move(o)) {}

  fanout::detail::SubscribeResult join(Recorder& m, const std::string& topic, std::uint32_t interval_ms) {
    fanout::detail::Replay replay;
    m.interval_ms = interval_ms;
    return HubMembers::subscribe(hub, topic, 0, &m, {.interval_ms = interval_ms}, nullptr, m.topic, m.index, replay);
  }
  void leave(Recorder& m) {
    if (Member* moved = HubMembers::unsubscribe(hub, m.topic, 0, m.index, &m, false, m.interval_ms))
      static_cast<Recorder*>(moved)->index = m.index;
  }
  /// Runs the shard until `done()` or a generous bound (the wheel ticks every 10 ms).
  template <class Done>
  void run_until(Done done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < until) ioc.run_one_for(std::chrono::milliseconds(50));
    ioc.restart();
  }
};

}  // namespace

TEST_CASE("throttle: one lane per interval, bounded per topic, freed with its last member") {
  Rig rig({.max_intervals_per_topic = 2});
  Recorder a, b, c, d;
  REQUIRE(rig.join(a, "t", 500) == fanout::detail::SubscribeResult::ok);
  REQUIRE(rig.join(b, "t", 500) == fanout::detail::SubscribeResult::ok);
  Topic& t = *a.topic;
  CHECK(fanout::detail::lane_count(t.lanes[0]) == 1);  // same interval, same lane
  CHECK(t.groups[0].members.empty());                  // throttled members are the lane's
  CHECK((t.shard_mask.load() & 1) == 1);               // ... and the shard still gets the topic's publishes
  REQUIRE(rig.join(c, "t", 100) == fanout::detail::SubscribeResult::ok);
  CHECK(fanout::detail::lane_count(t.lanes[0]) == 2);
  CHECK(rig.join(d, "t", 250) == fanout::detail::SubscribeResult::too_many_intervals);
  CHECK(rig.hub.subscriber_count("t") == 3);  // the refusal counted nothing

  rig.leave(a);
  CHECK(fanout::detail::find_lane(t.lanes[0], 500));  // b is still in it
  rig.leave(c);
  CHECK_FALSE(fanout::detail::find_lane(t.lanes[0], 100));
  CHECK(rig.join(d, "t", 250) == fanout::detail::SubscribeResult::ok);  // its place is free again
  rig.leave(b);
  rig.leave(d);
  CHECK_FALSE(t.lanes[0]);
  CHECK((t.shard_mask.load() & 1) == 0);
}

TEST_CASE("throttle: many members of one interval share one flush per tick: newest per key, same frames") {
  Rig rig;
  std::vector<std::unique_ptr<Recorder>> members;
  for (int i = 0; i < 50; ++i) {
    members.push_back(std::make_unique<Recorder>());
    REQUIRE(rig.join(*members.back(), "k", 200) == fanout::detail::SubscribeResult::ok);
  }
  Recorder plain;
  REQUIRE(rig.join(plain, "k", 0) == fanout::detail::SubscribeResult::ok);
  auto& counters = fanout::detail::RuntimeAccess::shard(rig.rt, 0).counters;
  // Two keys, 20 messages each, in one burst: one tick carries the newest of each.
  for (int i = 0; i < 40; ++i) rig.hub.publish("k", fmt::format("m{}", i + 1), {.key = i % 2 ? "b" : "a"});
  rig.run_until([&] { return members.back()->seqs.size() >= 2 && plain.seqs.size() == 40; });
  CHECK(plain.seqs.size() == 40);
  CHECK(counters.throttle_flushes.load() == 1);
  CHECK(counters.throttle_conflated.load() == 38);
  for (const auto& m : members) {
    CHECK(m->seqs == std::vector<std::uint64_t>{39, 40});
    REQUIRE(m->frames.size() == 2);
    CHECK(m->frames[0] == members.front()->frames[0]);  // the very frame, shared: encoded once
  }
  for (auto& m : members) rig.leave(*m);
  rig.leave(plain);
}

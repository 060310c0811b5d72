#include <doctest/doctest.h>

#include <fanout/outbound_queue.hpp>
#include <fanout/policy.hpp>

#include <string>

using namespace fanout;

namespace {
constexpr std::uint64_t topic_a = 1, topic_b = 2;

std::string payloads(const OutboundQueue& q) {
  std::string out;
  for (std::size_t i = 0; i < q.frames(); ++i) {
    const auto b = q.unwritten(i);
    out += std::string(reinterpret_cast<const char*>(b.data()), b.size()).substr(2) + ",";
  }
  return out;
}

// Frames of 4 bytes ("\x81\x02" + 2 chars); a limit of 12 bytes holds three.
const OutboundQueue::Limits k_three{.max_bytes = 12, .max_frames = 100};

OverflowContext context(std::uint64_t topic, BackpressureCounters& c, std::uint32_t key_hash = 0) {
  return {
      .topic = topic == topic_a ? "a" : "b", .topic_id = topic, .key_hash = key_hash, .limits = k_three, .counters = c};
}

OutboundQueue::Result push(OutboundQueue& q, BackpressurePolicy& p, BackpressureCounters& c, std::string s,
                           std::uint64_t topic = topic_a) {
  return q.push(Frame::make(Opcode::text, s), context(topic, c), p);
}
}  // namespace

TEST_CASE("drop_newest keeps the queue and discards the new frame") {
  OutboundQueue q;
  BackpressureCounters c;
  auto p = drop_newest();
  for (auto s : {"a1", "a2", "a3"}) CHECK(push(q, *p, c, s) == OutboundQueue::Result::queued);
  CHECK(push(q, *p, c, "a4") == OutboundQueue::Result::dropped);
  CHECK(payloads(q) == "a1,a2,a3,");
  CHECK(c.dropped_newest == 1);
  CHECK(q.bytes() <= k_three.max_bytes);
}

TEST_CASE("drop_oldest discards from the head but never a partly written frame") {
  OutboundQueue q;
  BackpressureCounters c;
  auto p = drop_oldest();
  for (auto s : {"a1", "a2", "a3"}) push(q, *p, c, s);
  CHECK(push(q, *p, c, "a4") == OutboundQueue::Result::queued);
  CHECK(payloads(q) == "a2,a3,a4,");
  q.consume(1);  // a2 is now partly written
  CHECK(push(q, *p, c, "a5") == OutboundQueue::Result::queued);
  CHECK(c.dropped_oldest == 2);
  CHECK(q.frames() == 3);  // a2 (rest), a4, a5
  CHECK(q.bytes() <= k_three.max_bytes);
}

TEST_CASE("conflate keeps only the newest frame of a topic") {
  OutboundQueue q;
  BackpressureCounters c;
  auto p = conflate();
  push(q, *p, c, "a1", topic_a);
  push(q, *p, c, "b1", topic_b);
  push(q, *p, c, "a2", topic_a);
  CHECK(push(q, *p, c, "b2", topic_b) == OutboundQueue::Result::queued);
  CHECK(payloads(q) == "a1,a2,b2,");  // the newer value moves to the back: the queue stays in seq order
  CHECK(push(q, *p, c, "a3", topic_a) == OutboundQueue::Result::queued);
  CHECK(payloads(q) == "a1,b2,a3,");
  CHECK(c.conflated == 2);
  CHECK(q.bytes() <= k_three.max_bytes);
}

TEST_CASE("disconnect asks for the client to be closed") {
  OutboundQueue q;
  BackpressureCounters c;
  auto p = disconnect();
  for (auto s : {"a1", "a2", "a3"}) push(q, *p, c, s);
  CHECK(push(q, *p, c, "a4") == OutboundQueue::Result::disconnect);
  CHECK(c.disconnected == 1);
}

TEST_CASE("control frames are never dropped by a policy") {
  OutboundQueue q;
  BackpressureCounters c;
  auto p = drop_oldest();
  q.push_control(Frame::make(Opcode::text, "c1"));
  push(q, *p, c, "a1");
  push(q, *p, c, "a2");
  push(q, *p, c, "a3");
  CHECK(payloads(q) == "c1,a2,a3,");
}

TEST_CASE("a user-defined policy through the interface") {
  struct KeepFirstTwo final : BackpressurePolicy {
    std::string_view name() const noexcept override { return "mine"; }
    Verdict on_overflow(OutboundQueue& q, FrameRef&, const OverflowContext&) override {
      return q.frames() >= 2 ? Verdict::drop : Verdict::enqueue;
    }
  } mine;
  OutboundQueue q;
  BackpressureCounters c;
  for (auto s : {"a1", "a2", "a3", "a4"}) push(q, mine, c, s);
  CHECK(payloads(q) == "a1,a2,a3,");
  CHECK(c.dropped_newest == 1);
}

TEST_CASE("a policy sees the topic's name, the frame's key and the limits") {
  // Keeps every frame of "b" (dropping the oldest to make room) and drops new frames of any other topic.
  struct ByTopic final : BackpressurePolicy {
    std::string_view name() const noexcept override { return "by_topic"; }
    std::string seen;
    Verdict on_overflow(OutboundQueue& q, FrameRef& f, const OverflowContext& ctx) override {
      seen += std::string(ctx.topic) + ":" + std::to_string(ctx.key_hash) + ",";
      CHECK(ctx.session == nullptr);
      CHECK(ctx.limits.max_bytes == k_three.max_bytes);
      if (ctx.topic != "b") return Verdict::drop;
      while (!q.fits(f->size(), ctx.limits) && q.drop_oldest(ctx.counters)) {
      }
      return Verdict::enqueue;
    }
  } p;
  OutboundQueue q;
  BackpressureCounters c;
  for (auto s : {"a1", "a2", "a3"}) push(q, p, c, s, topic_a);
  CHECK(push(q, p, c, "a4", topic_a) == OutboundQueue::Result::dropped);
  CHECK(q.push(Frame::make(Opcode::text, "b1", {.seq = 1, .key_hash = 7}), context(topic_b, c, 7), p) ==
        OutboundQueue::Result::queued);
  CHECK(payloads(q) == "a2,a3,b1,");
  CHECK(p.seen == "a:0,b:7,");
  CHECK(c.dropped_newest == 1);
  CHECK(c.dropped_oldest == 1);
}

TEST_CASE("policies by name") {
  CHECK(policy_by_name("conflate")->name() == "conflate");
  CHECK_THROWS_AS(policy_by_name("nope"), std::invalid_argument);
}

TEST_CASE("conflate by key keeps the newest frame of every (topic, key), in seq order") {
  OutboundQueue q;
  BackpressureCounters c;
  auto p = conflate();
  auto keyed = [&](std::string s, std::uint64_t seq, std::uint32_t key) {
    return q.push(Frame::make(Opcode::text, s, {seq, key}), context(topic_a, c, key), *p);
  };
  keyed("x1", 1, 11);
  keyed("y2", 2, 22);
  keyed("z3", 3, 33);
  CHECK(keyed("x4", 4, 11) == OutboundQueue::Result::queued);  // replaces x1, goes to the back
  CHECK(payloads(q) == "y2,z3,x4,");
  CHECK(keyed("z5", 5, 33) == OutboundQueue::Result::queued);
  CHECK(payloads(q) == "y2,x4,z5,");
  CHECK(c.conflated == 2);
  CHECK(c.dropped_oldest == 0);  // every key keeps its newest value
}

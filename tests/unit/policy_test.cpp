#include <doctest/doctest.h>

#include <fanout/outbound_queue.hpp>
#include <fanout/policy.hpp>

#include <string>

using namespace fanout;

namespace {
int topic_a, topic_b;

std::string payloads(const OutboundQueue& q) {
  iovec iov[256];
  const auto n = q.gather(iov, 256, SIZE_MAX);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string f(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
    out += f.substr(2) + ",";
  }
  return out;
}

// Frames of 4 bytes ("\x81\x02" + 2 chars); a limit of 12 bytes holds three.
const OutboundQueue::Limits k_three{.max_bytes = 12, .max_frames = 100};

OutboundQueue::Result push(OutboundQueue& q, BackpressurePolicy& p, BackpressureCounters& c, std::string s,
                           const void* topic = &topic_a) {
  return q.push(Frame::make(Opcode::text, s), topic, k_three, p, c);
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
  push(q, *p, c, "a1", &topic_a);
  push(q, *p, c, "b1", &topic_b);
  push(q, *p, c, "a2", &topic_a);
  CHECK(push(q, *p, c, "b2", &topic_b) == OutboundQueue::Result::queued);
  CHECK(payloads(q) == "a1,a2,b2,");  // the newer value moves to the back: the queue stays in seq order
  CHECK(push(q, *p, c, "a3", &topic_a) == OutboundQueue::Result::queued);
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
    Verdict on_overflow(OutboundQueue& q, FrameRef&, const void*, const OutboundQueue::Limits&,
                        BackpressureCounters&) override {
      return q.frames() >= 2 ? Verdict::drop : Verdict::enqueue;
    }
  } mine;
  OutboundQueue q;
  BackpressureCounters c;
  for (auto s : {"a1", "a2", "a3", "a4"}) push(q, mine, c, s);
  CHECK(payloads(q) == "a1,a2,a3,");
  CHECK(c.dropped_newest == 1);
}

TEST_CASE("policies by name") {
  CHECK(policy_by_name("conflate")->name() == "conflate");
  CHECK_THROWS_AS(policy_by_name("nope"), std::invalid_argument);
}

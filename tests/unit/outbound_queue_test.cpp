#include <doctest/doctest.h>

#include <fanout/outbound_queue.hpp>
#include <fanout/policy.hpp>

#include <string>

using namespace fanout;

static std::string gathered(const OutboundQueue& q) {
  std::string out;
  for (std::size_t i = 0; i < q.frames(); ++i) {
    const auto b = q.unwritten(i);
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  return out;
}

TEST_CASE("queue gathers everything queued and consumes partial writes") {
  OutboundQueue q;
  BackpressureCounters c;
  OutboundQueue::Limits lim;
  auto p = drop_oldest();
  for (int i = 0; i < 20; ++i)
    CHECK(q.push(Frame::make(Opcode::text, std::to_string(i)),
                 {.topic = "t", .topic_id = 1, .limits = lim, .counters = c}, *p) == OutboundQueue::Result::queued);
  CHECK(q.frames() == 20);
  const auto all = gathered(q);
  CHECK(all.size() == q.bytes());
  q.consume(3);  // "\x81\x01" + "0" and nothing of the next
  CHECK(q.frames() == 19);
  q.consume(1);  // one byte into the next frame
  CHECK(q.frames() == 19);
  CHECK(gathered(q) == all.substr(4));
  q.consume(q.bytes());
  CHECK(q.empty());
  q.shrink_if_empty();
  CHECK(q.bytes() == 0);
}

TEST_CASE("queue grows past its initial capacity in order") {
  OutboundQueue q;
  BackpressureCounters c;
  auto p = drop_newest();
  std::string expect;
  for (int i = 0; i < 1000; ++i) {
    auto f = Frame::make(Opcode::text, std::to_string(i));
    expect.append(reinterpret_cast<const char*>(f->bytes().data()), f->size());
    const OutboundQueue::Limits lim;
    q.push(f, {.topic = "t", .topic_id = 1, .limits = lim, .counters = c}, *p);
    if (i % 7 == 0) {
      // interleave consumption to wrap the ring
      auto first = gathered(q).substr(0, 2 + std::to_string(0).size());
      (void)first;
    }
  }
  CHECK(gathered(q).size() <= expect.size());
  CHECK(q.frames() == 1000);
}

TEST_CASE("control replies count against the queue and stop at its control reserve") {
  OutboundQueue q;
  BackpressureCounters c;
  const OutboundQueue::Limits lim{
      .max_bytes = 1000, .max_frames = 100, .control_reserve_bytes = 200, .control_reserve_frames = 10};
  auto p = drop_oldest();
  // Data fills the budget; the policy keeps it there.
  const std::string payload(98, 'd');  // 100-byte frames
  for (int i = 0; i < 15; ++i)
    (void)q.push(Frame::make(Opcode::text, payload), {.topic = "t", .topic_id = 1, .limits = lim, .counters = c}, *p);
  CHECK(q.bytes() == 1000);
  // Acks still flow, into the reserve ...
  const std::string ack(48, 'a');  // 50-byte frames
  for (int i = 0; i < 4; ++i) CHECK(q.push_reply(Frame::make(Opcode::text, ack), lim));
  CHECK(q.bytes() == 1200);
  // ... and no further: a client that asks without reading is refused, nothing is queued.
  CHECK_FALSE(q.push_reply(Frame::make(Opcode::text, ack), lim));
  CHECK(q.bytes() == 1200);
  // Replies are not the policy's to drop: drop_oldest takes data frames only.
  CHECK(q.drop_oldest(c));
  CHECK(q.bytes() == 1100);
  CHECK(q.push_reply(Frame::make(Opcode::text, ack), lim));
  // The frame count has a reserve too (tiny pongs would otherwise cost a ring entry each, unbounded).
  OutboundQueue small;
  const OutboundQueue::Limits few{.max_bytes = 1 << 20, .max_frames = 4, .control_reserve_frames = 2};
  int queued = 0;
  while (small.push_reply(Frame::make(Opcode::pong, {}), few) && queued < 100) ++queued;
  CHECK(queued == 6);
  // The close frame goes whatever the limits.
  small.push_control(Frame::make_close(1008, "bye"));
  CHECK(small.frames() == 7);
}

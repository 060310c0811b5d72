#include <doctest/doctest.h>

#include <fanout/detail/queue_budget.hpp>
#include <fanout/detail/queue_memory.hpp>
#include <fanout/outbound_queue.hpp>
#include <fanout/policy.hpp>

#include <string>
#include <vector>

using namespace fanout;
using detail::queue_memory;

namespace {

std::size_t frame_bytes() { return queue_memory().frame_bytes.load(); }
std::size_t slot_bytes() { return queue_memory().slot_bytes.load(); }

OutboundQueue::Result push(OutboundQueue& q, FrameRef f, BackpressurePolicy& p, BackpressureCounters& c,
                           const OutboundQueue::Limits& lim, std::size_t budget_frames = SIZE_MAX) {
  return q.push(std::move(f), {.topic = "t", .topic_id = 1, .limits = lim, .counters = c}, p, budget_frames);
}

// Sets the process-wide budget for one test case and puts it back.
struct BudgetScope {
  std::size_t saved = queue_memory().budget.exchange(0);
  explicit BudgetScope(std::size_t budget) { queue_memory().budget = budget; }
  ~BudgetScope() { queue_memory().budget = saved; }
};

}  // namespace

TEST_CASE("a frame's bytes are accounted once however many queues share it") {
  const std::size_t before = frame_bytes();
  {
    auto f = Frame::make(Opcode::text, std::string(1000, 'x'));
    const std::size_t one = frame_bytes() - before;
    CHECK(one >= 1000 + 4);
    CHECK(one < 1100);
    std::vector<OutboundQueue> queues(50);
    BackpressureCounters c;
    OutboundQueue::Limits lim;
    for (auto& q : queues) push(q, f, *drop_oldest(), c, lim);
    CHECK(frame_bytes() - before == one);  // 50 references, one frame
  }
  CHECK(frame_bytes() == before);  // released by the last queue
}

TEST_CASE("ring slots are accounted as the ring grows, compacts and clears") {
  const std::size_t before = slot_bytes();
  OutboundQueue q;
  BackpressureCounters c;
  OutboundQueue::Limits lim;
  CHECK(slot_bytes() == before);  // an empty queue owns nothing
  for (int i = 0; i < 100; ++i) push(q, Frame::make(Opcode::text, "x"), *drop_oldest(), c, lim);
  CHECK(q.capacity() == 128);
  CHECK(slot_bytes() - before == q.slot_bytes());
  q.consume(q.unwritten(0).size() * 90);  // 90 frames of 3 bytes written
  CHECK(q.frames() == 10);
  q.compact();
  CHECK(q.capacity() == 16);
  CHECK(slot_bytes() - before == q.slot_bytes());
  q.clear();
  CHECK(slot_bytes() == before);
}

TEST_CASE("a budget cap makes each policy act below the session's own limits") {
  OutboundQueue::Limits lim;  // 1 MiB, 16384 frames: never reached here
  BackpressureCounters c;
  SUBCASE("drop_oldest trims to the cap, oldest first") {
    OutboundQueue q;
    for (int i = 0; i < 300; ++i) push(q, Frame::make(Opcode::text, std::to_string(i)), *drop_oldest(), c, lim, 260);
    CHECK(q.frames() == 260);
    CHECK(c.dropped_oldest == 40);
    CHECK(c.budget_dropped == 40);
    CHECK(q.unwritten(0)[2] == std::byte{'4'});  // "40" is the oldest left
    // A cap far below what is queued cuts it down at the next delivery.
    push(q, Frame::make(Opcode::text, "n"), *drop_oldest(), c, lim, 10);
    CHECK(q.frames() == 10);
    CHECK(c.budget_dropped == 40 + 251);
  }
  SUBCASE("drop_newest refuses new frames") {
    OutboundQueue q;
    for (int i = 0; i < 300; ++i) push(q, Frame::make(Opcode::text, "x"), *drop_newest(), c, lim, 256);
    CHECK(q.frames() == 256);
    CHECK(c.dropped_newest == 44);
    CHECK(c.budget_dropped == 44);
  }
  SUBCASE("disconnect disconnects") {
    OutboundQueue q;
    for (int i = 0; i < 256; ++i) push(q, Frame::make(Opcode::text, "x"), *disconnect(), c, lim, 256);
    CHECK(push(q, Frame::make(Opcode::text, "x"), *disconnect(), c, lim, 256) == OutboundQueue::Result::disconnect);
    CHECK(c.budget_disconnected == 1);
    CHECK(c.disconnected == 1);
  }
  SUBCASE("conflate replaces the same key's frame") {
    OutboundQueue q;
    for (int i = 0; i < 256; ++i)
      push(q, Frame::make(Opcode::text, "x", {.seq = std::uint64_t(i), .key_hash = std::uint32_t(i)}), *conflate(), c,
           lim, 256);
    push(q, Frame::make(Opcode::text, "y", {.seq = 300, .key_hash = 7}), *conflate(), c, lim, 256);
    CHECK(q.frames() == 256);
    CHECK(c.conflated == 1);
    CHECK(c.budget_dropped == 1);
  }
  SUBCASE("the session's own limit is not counted as the budget's") {
    OutboundQueue q;
    OutboundQueue::Limits small{.max_frames = 8};
    for (int i = 0; i < 20; ++i) push(q, Frame::make(Opcode::text, "x"), *drop_oldest(), c, small, 256);
    CHECK(c.dropped_oldest == 12);
    CHECK(c.budget_dropped == 0);
  }
}

TEST_CASE("conflate under the budget keeps the newest frame per key instead of the newest frames") {
  OutboundQueue::Limits lim;
  BackpressureCounters c;
  OutboundQueue q;
  // 4 keys, 25 updates each, interleaved: 100 frames where the budget's cap (what apply_budget
  // passes) is 10.
  for (int i = 0; i < 100; ++i)
    push(q,
         Frame::make(Opcode::text, std::to_string(i), {.seq = std::uint64_t(i), .key_hash = std::uint32_t(i % 4 + 1)}),
         *conflate(), c, lim);
  CHECK(q.push_reply(Frame::make(Opcode::text, "ack"), lim));  // a control reply is never conflated
  const auto payload = [&](std::size_t i) {
    const auto b = q.unwritten(i).subspan(2);  // a short text frame's header is 2 bytes
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  };
  SUBCASE("down to the cap: the oldest superseded values go first, the newest stay in order") {
    CHECK(q.conflate_to(10, c) == 91);
    REQUIRE(q.frames() == 10);
    CHECK(c.conflated == 91);
    // Left: superseded 91..95 (the newest of those), every key's newest 96..99, and the reply.
    std::vector<std::string> left;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < q.frames(); ++i) {
      left.push_back(payload(i));
      bytes += q.unwritten(i).size();
    }
    CHECK(left == std::vector<std::string>{"91", "92", "93", "94", "95", "96", "97", "98", "99", "ack"});
    CHECK(q.bytes() == bytes);
  }
  SUBCASE("a cap below the number of keys: one frame per key, the trim does the rest") {
    CHECK(q.conflate_to(2, c) == 96);
    REQUIRE(q.frames() == 5);  // the newest of each of the 4 keys, and the reply
    CHECK(payload(0) == "96");
    CHECK(payload(4) == "ack");
    CHECK(q.trim_to(2, c) == 3);
    CHECK(q.frames() == 2);
  }
  SUBCASE("a queue within the cap is left alone") {
    CHECK(q.conflate_to(200, c) == 0);
    CHECK(q.frames() == 101);
  }
}

TEST_CASE("conflate_to keeps the newest value of each key and a partly written head") {
  OutboundQueue::Limits lim;
  BackpressureCounters c;
  OutboundQueue q;
  for (std::uint64_t seq = 1; seq <= 6; ++seq)  // keys 2 1 2 1 2 1
    push(q,
         Frame::make(Opcode::text, std::string(1, char('0' + seq)),
                     {.seq = seq, .key_hash = std::uint32_t(seq % 2 + 1)}),
         *conflate(), c, lim);
  q.consume(1);  // the head (seq 1, superseded) is half written: it must finish
  CHECK(q.conflate_to(0, c) == 3);
  REQUIRE(q.frames() == 3);
  const auto payload = [&](std::size_t i) { return std::to_integer<char>(q.unwritten(i).back()); };
  CHECK(payload(0) == '1');  // the partly written head
  CHECK(payload(1) == '5');  // key 2's newest, then key 1's: publish order
  CHECK(payload(2) == '6');
}

TEST_CASE("over the budget a full ring does not grow past the floor; under it, it does") {
  OutboundQueue::Limits lim;
  BackpressureCounters c;
  OutboundQueue q;
  for (std::size_t i = 0; i < detail::k_budget_floor_frames; ++i)
    push(q, Frame::make(Opcode::text, "x"), *drop_oldest(), c, lim);
  CHECK(q.capacity() == detail::k_budget_floor_frames);
  {
    BudgetScope scope(1);  // every byte held is over it
    push(q, Frame::make(Opcode::text, "x"), *drop_oldest(), c, lim);
    CHECK(q.capacity() == detail::k_budget_floor_frames);
    CHECK(q.frames() == detail::k_budget_floor_frames);
    CHECK(c.budget_dropped == 1);
  }
  push(q, Frame::make(Opcode::text, "x"), *drop_oldest(), c, lim);
  CHECK(q.capacity() == 2 * detail::k_budget_floor_frames);
  CHECK(c.budget_dropped == 1);
}

TEST_CASE("water level cuts the longest queues first") {
  const std::vector<std::uint32_t> lengths{5, 10, 1000, 3000};
  CHECK(detail::water_level(lengths, 4015) == 3000);  // everything fits
  CHECK(detail::water_level(lengths, 2015) == 1000);  // only the longest is cut
  CHECK(detail::water_level(lengths, 1015) == 500);   // the two long ones, evenly
  CHECK(detail::water_level(lengths, 0) == 0);
  CHECK(detail::water_level({}, 10) == 0);
}

TEST_CASE("the shard's cap falls past the budget, never below the floor, and comes back under half of it") {
  detail::QueueBudget b;
  std::vector<std::uint32_t> lengths(100, 10);  // keeping up
  lengths.push_back(16384);                     // far behind
  lengths.push_back(8000);
  CHECK(b.update(100, 0, lengths) == detail::QueueBudget::k_none);     // off
  CHECK(b.update(100, 1000, lengths) == detail::QueueBudget::k_none);  // under
  const std::size_t cap = b.update(2000, 1000, lengths);               // twice over: aim at 3/8 of the frames
  CHECK(cap < 8000);
  CHECK(cap >= detail::k_budget_floor_frames);
  CHECK(b.update(2000, 1000, lengths) <= cap);  // still over: never raised
  lengths.assign(100, 10);
  lengths.push_back(300);
  CHECK(b.update(1 << 30, 1000, lengths) == detail::k_budget_floor_frames);  // floor: short queues kept
  CHECK(b.update(700, 1000, lengths) == detail::k_budget_floor_frames);      // between half and all: held
  CHECK(b.update(100, 1000, lengths) == 2 * detail::k_budget_floor_frames);  // under half: doubles back
}

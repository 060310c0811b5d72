// ConflatingBuffer and lanes: the newest frame per key in seq order, the same Frame objects
// (no copy, no re-encode), keyless frames as one key, and the lane list's bookkeeping (lane.hpp).
#include <doctest/doctest.h>

#include "fanout/detail/lane.hpp"
#include "fanout/detail/topic.hpp"

#include <fanout/frame.hpp>

#include <string>
#include <vector>

using fanout::Frame;
using fanout::FrameRef;
using fanout::Opcode;
using fanout::detail::ConflatingBuffer;
using fanout::detail::Lane;
using fanout::detail::PendingFrame;

namespace {
FrameRef frame(std::uint64_t seq, std::uint32_t key, std::string_view payload = "x") {
  return Frame::make(Opcode::text, payload, {.seq = seq, .key_hash = key});
}
std::unique_ptr<fanout::detail::Topic> topic_record() {
  return std::make_unique<fanout::detail::Topic>("t", 1, fanout::detail::HistoryLimits{}, fanout::Group::Limits{}, 1,
                                                 std::make_shared<std::atomic<std::int64_t>>(0));
}
std::vector<std::uint64_t> take_seqs(ConflatingBuffer& b) {
  std::vector<std::uint64_t> out;
  b.take([&](PendingFrame&& p) { out.push_back(p.frame->seq()); });
  return out;
}
}  // namespace

TEST_CASE("conflating buffer: newest per key wins, in seq order") {
  ConflatingBuffer b;
  CHECK_FALSE(b.offer({frame(1, 11), {}}));
  CHECK_FALSE(b.offer({frame(2, 22), {}}));
  CHECK(b.offer({frame(3, 11), {}}));  // replaces seq 1
  CHECK_FALSE(b.offer({frame(4, 33), {}}));
  CHECK(b.offer({frame(5, 22), {}}));  // replaces seq 2
  CHECK(b.size() == 3);
  CHECK(take_seqs(b) == std::vector<std::uint64_t>{3, 4, 5});
  CHECK(b.empty());
  CHECK(b.bytes() == 0);
  CHECK(take_seqs(b).empty());
}

TEST_CASE("conflating buffer: frames without a key conflate as one key") {
  ConflatingBuffer b;
  for (std::uint64_t s = 1; s <= 50; ++s) b.offer({frame(s, 0), {}});
  CHECK(b.size() == 1);
  CHECK(take_seqs(b) == std::vector<std::uint64_t>{50});
}

TEST_CASE("conflating buffer: hands out the very frames offered, envelopes with them") {
  ConflatingBuffer b;
  const FrameRef f = frame(7, 5, "payload");
  const FrameRef env = frame(7, 5, "{\"data\":\"payload\"}");
  b.offer({f, env});
  std::vector<PendingFrame> out;
  b.take([&](PendingFrame&& p) { out.push_back(std::move(p)); });
  REQUIRE(out.size() == 1);
  CHECK(out[0].frame.get() == f.get());
  CHECK(out[0].envelope.get() == env.get());
}

TEST_CASE("conflating buffer: many updates of few keys stay bounded by the keys (holes are compacted)") {
  ConflatingBuffer b;
  std::size_t expected_bytes = 0;
  for (std::uint64_t s = 1; s <= 10'000; ++s) b.offer({frame(s, static_cast<std::uint32_t>(s % 4) + 1), {}});
  for (std::uint64_t s = 9'997; s <= 10'000; ++s) expected_bytes += frame(s, 1)->size();
  CHECK(b.size() == 4);
  CHECK(b.bytes() == expected_bytes);
  CHECK(take_seqs(b) == std::vector<std::uint64_t>{9'997, 9'998, 9'999, 10'000});
}

TEST_CASE("conflating buffer: a frame outlives the buffer only through its takers") {
  ConflatingBuffer b;
  FrameRef f = frame(1, 1);
  b.offer({f, {}});
  b.offer({frame(2, 1), {}});  // the buffer let go of seq 1
  CHECK(f->seq() == 1);
  b.clear();
  CHECK(b.empty());
}

TEST_CASE("lanes: found by interval, counted, erased from the middle of the list") {
  auto record = topic_record();
  auto& topic = *record;
  std::unique_ptr<Lane> head;
  for (std::uint32_t ms : {100u, 500u, 1000u}) {
    auto l = std::make_unique<Lane>(topic, ms, fanout::Group::Limits{});
    l->next = std::move(head);
    head = std::move(l);
  }
  CHECK(fanout::detail::lane_count(head) == 3);
  Lane* mid = fanout::detail::find_lane(head, 500);
  REQUIRE(mid);
  CHECK(mid->interval_ms == 500);
  CHECK_FALSE(fanout::detail::find_lane(head, 250));
  fanout::detail::erase_lane(head, mid);
  CHECK(fanout::detail::lane_count(head) == 2);
  CHECK_FALSE(fanout::detail::find_lane(head, 500));
  CHECK(fanout::detail::find_lane(head, 100));
  CHECK(fanout::detail::find_lane(head, 1000));
}

TEST_CASE("lane: a buffer past the group's log bounds asks for an early flush") {
  auto record = topic_record();
  auto& topic = *record;
  fanout::Group::Limits limits{};
  limits.log_max_frames = 3;
  Lane lane(topic, 500, limits);
  for (std::uint32_t k = 1; k <= 3; ++k) lane.buffer.offer({frame(k, k), {}});
  CHECK_FALSE(lane.buffer_over_limit());
  lane.buffer.offer({frame(4, 4), {}});
  CHECK(lane.buffer_over_limit());
  lane.buffer.offer({frame(5, 4), {}});  // the same key: no more room taken
  CHECK(lane.buffer.size() == 4);
}

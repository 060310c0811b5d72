// Group: the member arrays under swap-remove, and the log members pull from (group.hpp).
#include <doctest/doctest.h>

#include "fanout/detail/group.hpp"

#include <fanout/frame.hpp>

#include <stdexcept>
#include <vector>

using fanout::Frame;
using fanout::Opcode;
using fanout::detail::Group;
using fanout::detail::PendingFrame;

namespace {
fanout::detail::Member* fake(std::uintptr_t n) {
  return reinterpret_cast<fanout::detail::Member*>(n * 64);
}  // never dereferenced
void publish(Group& g, std::uint64_t seq) { g.append({Frame::make(Opcode::text, "x", {.seq = seq}), {}, {}}); }
std::uint64_t first_after(const Group& g, std::uint64_t seq) {
  const auto s = g.after(seq);
  return s.empty() ? 0 : s.front().frame->seq();
}
}  // namespace

TEST_CASE("group: swap-remove keeps each member's cursor and flag with it") {
  Group g;
  CHECK(g.add_member(fake(1), 10) == 0);
  CHECK(g.add_member(fake(2), 20) == 1);
  CHECK(g.add_member(fake(3), 30) == 2);
  g.flagged[2] = 1;
  g.flagged_count = 1;
  CHECK(g.remove_member(0) == fake(3));  // the last one moved into place 0
  CHECK(g.members.size() == 2);
  CHECK(g.cursor[0] == 30);
  CHECK(g.flagged[0] == 1);
  CHECK(g.remove_member(0) == fake(2));
  CHECK(g.flagged_count == 0);  // a flagged member that leaves is no longer counted
  CHECK(g.remove_member(0) == nullptr);
  CHECK(g.members.empty());
}

TEST_CASE("group: after() finds the frames past a cursor") {
  Group g;
  for (std::uint64_t s = 5; s <= 9; ++s) publish(g, s);
  CHECK(g.after(4).size() == 5);
  CHECK(first_after(g, 6) == 7);
  CHECK(g.after(9).empty());
  CHECK(g.after(100).empty());
  CHECK(g.log_bytes == 5 * g.log[0].frame->size());
}

TEST_CASE("group: trim drops what every flagged member has, and clears when nobody is flagged") {
  Group g;
  g.add_member(fake(1), 0);
  g.add_member(fake(2), 0);
  for (std::uint64_t s = 1; s <= 10; ++s) publish(g, s);
  g.flagged = {1, 1};
  g.flagged_count = 2;
  g.cursor = {4, 7};
  g.trim();
  CHECK(g.log.size() == 6);  // 5..10: member 0 still lacks them
  CHECK(first_after(g, 0) == 5);
  CHECK(g.log_bytes == 6 * g.log[0].frame->size());
  g.flagged = {0, 1};
  g.flagged_count = 1;
  g.cursor = {10, 7};
  g.trim();
  CHECK(g.log.size() == 3);
  g.flagged = {0, 0};
  g.flagged_count = 0;
  g.trim();
  CHECK(g.log.empty());
  CHECK(g.log_bytes == 0);
}

TEST_CASE("group: the last flagged member to pull empties the log") {
  Group g;
  g.add_member(fake(1), 0);
  g.add_member(fake(2), 0);
  publish(g, 1);
  g.flagged = {1, 1};
  g.flagged_count = 2;
  g.cursor[0] = 1;
  g.unflag(0);
  CHECK(g.log.size() == 1);  // member 1 still lacks it
  g.cursor[1] = 1;
  g.unflag(1);
  CHECK(g.log.empty());
  CHECK(g.log_bytes == 0);
}

TEST_CASE("group: the log reports when it is over its bounds") {
  Group g;
  for (std::uint64_t s = 1; s <= fanout::Group::Limits{}.log_max_frames; ++s) publish(g, s);
  CHECK_FALSE(g.log_over_limit());
  publish(g, fanout::Group::Limits{}.log_max_frames + 1);
  CHECK(g.log_over_limit());
  g.clear_log();
  g.append({Frame::make(Opcode::binary, std::string(fanout::Group::Limits{}.log_max_bytes, 'b'), {.seq = 1}), {}, {}});
  CHECK(g.log_over_limit());
}

TEST_CASE("group: bound_log trims past the trim bound, and past the max hands the flagged members their frames") {
  Group g;
  g.add_member(fake(1), 0);
  g.add_member(fake(2), 0);
  g.add_member(fake(3), 0);
  g.flag(0);
  g.flag(2);
  g.cursor = {fanout::Group::Limits{}.log_trim_frames, 0, 0};  // member 1 is not flagged: it has everything
  for (std::uint64_t s = 1; s <= fanout::Group::Limits{}.log_trim_frames + 10; ++s) publish(g, s);
  std::vector<std::size_t> pulled;
  auto pull = [&](std::size_t i) {
    pulled.push_back(i);
    g.cursor[i] = g.log.back().frame->seq();
    g.unflag(i);
  };
  g.bound_log(pull);
  CHECK(pulled.empty());                                                // within the max: nobody is made to pull
  CHECK(g.log.size() == fanout::Group::Limits{}.log_trim_frames + 10);  // member 2 still lacks every frame
  g.cursor[2] = fanout::Group::Limits{}.log_trim_frames;
  g.bound_log(pull);
  CHECK(g.log.size() == 10);  // past the trim bound: what both flagged members have goes
  for (std::uint64_t s = fanout::Group::Limits{}.log_trim_frames + 11;
       g.log.size() <= fanout::Group::Limits{}.log_max_frames; ++s)
    publish(g, s);
  g.bound_log(pull);
  CHECK(pulled == std::vector<std::size_t>{0, 2});
  CHECK(g.flagged_count == 0);
  CHECK(g.log.empty());
}

TEST_CASE("group: smaller limits trim and hand frames over earlier") {
  Group g;
  g.limits = {.log_trim_frames = 4, .log_max_frames = 8, .log_max_bytes = 1 << 20};
  g.add_member(fake(1), 0);
  g.add_member(fake(2), 0);
  g.flag(0);
  g.flag(1);
  g.cursor = {3, 0};
  std::vector<std::size_t> pulled;
  auto pull = [&](std::size_t i) {
    pulled.push_back(i);
    g.cursor[i] = g.log.back().frame->seq();
    g.unflag(i);
  };
  for (std::uint64_t s = 1; s <= 4; ++s) publish(g, s);
  g.bound_log(pull);
  CHECK(g.log.size() == 4);  // at the trim bound, not past it: nothing dropped
  g.cursor[1] = 3;
  publish(g, 5);
  g.bound_log(pull);
  CHECK(g.log.size() == 2);  // past 4 frames: 1..3, which both members have, go
  CHECK(pulled.empty());
  for (std::uint64_t s = 6; s <= 11; ++s) publish(g, s);
  CHECK(g.log.size() == 8);
  CHECK_FALSE(g.log_over_limit());
  publish(g, 12);
  g.bound_log(pull);  // past 8 frames: both are handed what they lack
  CHECK(pulled == std::vector<std::size_t>{0, 1});
  CHECK(g.log.empty());

  Group b;  // a byte bound goes eager on the first frame over it
  b.limits = {.log_trim_frames = 4, .log_max_frames = 8, .log_max_bytes = 100};
  b.append({Frame::make(Opcode::binary, std::string(60, 'b'), {.seq = 1}), {}, {}});
  CHECK_FALSE(b.log_over_limit());
  b.append({Frame::make(Opcode::binary, std::string(60, 'b'), {.seq = 2}), {}, {}});
  CHECK(b.log_over_limit());
}

TEST_CASE("group: limits that make no sense are refused") {
  CHECK_NOTHROW(fanout::Group::check({}));
  CHECK_NOTHROW(fanout::Group::check({.log_trim_frames = 0, .log_max_frames = 0, .log_max_bytes = 0}));
  CHECK_THROWS_AS(fanout::Group::check({.log_trim_frames = 10, .log_max_frames = 9}), std::invalid_argument);
}

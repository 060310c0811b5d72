// History ring bounds, and the Hub's seq, duplicate, snapshot, history and eviction rules (no sessions).
#include <doctest/doctest.h>

#include <fanout/detail/envelope.hpp>
#include <fanout/detail/history.hpp>
#include <fanout/detail/topic.hpp>
#include <fanout/fanout.hpp>

#include <asio/io_context.hpp>

#include <string>
#include <vector>

using fanout::Frame;
using fanout::Opcode;
using fanout::detail::History;

namespace {
fanout::detail::HistoryEntry entry(std::uint64_t seq, std::size_t bytes = 10) {
  return {seq, Frame::make(Opcode::text, std::string(bytes, 'x'), {seq, 0}), {}, {}};
}
}  // namespace

TEST_CASE("history: bounded by count, then by bytes; the floor follows what is forgotten") {
  History h;
  h.set_floor(4);
  for (std::uint64_t s = 5; s <= 14; ++s) h.push(entry(s), 4, 1 << 20);
  CHECK(h.size() == 4);
  CHECK(h.first_seq() == 11);
  CHECK(h.floor() == 10);
  CHECK(h.after(10) == 0);
  CHECK(h.after(12) == 2);
  CHECK(h.after(14) == 4);
  History b;
  for (std::uint64_t s = 1; s <= 100; ++s) b.push(entry(s, 1000), 1000, 5000);
  CHECK(b.bytes() <= 5000);
  CHECK(b.size() >= 3);
  CHECK(b.floor() + 1 == b.first_seq());
  History one;  // an entry larger than the byte limit alone is still kept: since must reach the present
  one.push(entry(1, 10000), 10, 100);
  CHECK(one.size() == 1);
  History none;
  none.push(entry(7), 0, 100);
  CHECK(none.empty());
  CHECK(none.floor() == 7);
}

TEST_CASE("hub: seq per topic, duplicates and jumps of a given seq, history and snapshot queries") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  CHECK(hub.publish("t", "a").shards == 0);  // no members: kept, not posted
  hub.publish("t", "b", {.key = "k1"});
  CHECK(hub.last_seq("t") == 2);
  hub.publish("t", "c", {.key = "k2", .seq = 10});  // a jump is accepted
  CHECK(hub.publish("t", "dup", {.seq = 10}).status == fanout::Hub::PublishResult::Status::duplicate);
  CHECK(hub.publish("t", "old", {.seq = 3}).seq == 10);  // a duplicate answers the last seq
  CHECK(hub.duplicates() == 2);
  hub.publish("t", "d", {.key = "k1"});
  CHECK(hub.last_seq("t") == 11);
  CHECK(hub.last_seq("unknown") == 0);

  auto h = hub.history("t", 1, 100);
  REQUIRE(h);
  REQUIRE(h->messages.size() == 3);
  CHECK(h->messages[0].seq == 2);
  CHECK(h->messages[0].payload == "b");
  CHECK(h->messages[1].seq == 10);
  CHECK(h->messages[2].key == "k1");
  CHECK_FALSE(h->truncated);
  CHECK(hub.history("t", 0, 2)->messages.size() == 2);
  CHECK_FALSE(hub.history("nope", 0, 2));

  auto s = hub.snapshot("t");  // latest per key ("" for messages without one), in seq order
  REQUIRE(s);
  REQUIRE(s->messages.size() == 3);
  CHECK(s->messages[0].payload == "a");
  CHECK(s->messages[1].payload == "c");
  CHECK(s->messages[2].payload == "d");
  CHECK(s->seq == 11);
  CHECK(s->epoch != 0);
  auto info = hub.topic("t");
  REQUIRE(info);
  CHECK(info->history_messages == 4);
  CHECK(info->seq == 11);
}

TEST_CASE("hub: max_topics forgets the oldest topic without members; history limits by prefix") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub::Options o;
  o.max_topics = 3;
  o.history_by_prefix = {{"quiet.", {.max_messages = 0, .max_bytes = 0, .max_keys = 0}}};
  fanout::Hub hub(rt, o);
  hub.publish("a", "1");
  hub.publish("b", "1");
  hub.publish("quiet.c", "1");
  CHECK(hub.topic_count() == 3);
  hub.publish("d", "1");
  CHECK(hub.topic_count() == 3);
  CHECK(hub.last_seq("a") == 0);  // forgotten
  CHECK(hub.last_seq("d") == 1);
  CHECK(hub.history("quiet.c", 0, 10)->messages.empty());
  CHECK(hub.history("quiet.c", 0, 10)->truncated);  // nothing kept: what was published is lost to it
  CHECK(hub.snapshot("quiet.c")->messages.empty());
  CHECK(hub.publish("bad topic", "x").status == fanout::Hub::PublishResult::Status::invalid_topic);
  CHECK(hub.topic_count() == 3);
}

TEST_CASE("envelope: JSON payloads embedded, other text quoted, binary left alone") {
  using fanout::detail::make_envelope;
  auto json = make_envelope("t", 7, "k", Frame::make(Opcode::text, R"({"px":1})", {7, 1}));
  CHECK(json->payload_view() == R"({"topic":"t","seq":7,"key":"k","data":{"px":1}})");
  CHECK(json->seq() == 7);
  auto text = make_envelope("t", 8, "", Frame::make(Opcode::text, "hi \"there\"", {8, 0}));
  CHECK(text->payload_view() == R"({"topic":"t","seq":8,"data":"hi \"there\""})");
  auto bin = Frame::make(Opcode::binary, "\x01\x02", {9, 0});
  CHECK(make_envelope("t", 9, "", bin).get() == bin.get());
}

TEST_CASE("hub: the history byte budget over all topics holds; forgotten topics give their bytes back") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub::Options o;
  o.max_history_bytes = 50'000;
  o.max_topics = 5;
  fanout::Hub hub(rt, o);
  const std::string payload(1000, 'x');
  for (int i = 0; i < 400; ++i) hub.publish("t" + std::to_string(i % 4), payload);
  CHECK(hub.history_bytes() <= 50'000);
  CHECK(hub.history_bytes() > 40'000);
  for (int i = 0; i < 4; ++i) CHECK(hub.topic("t" + std::to_string(i))->history_messages >= 1);
  for (int i = 10; i < 20; ++i) hub.publish("u" + std::to_string(i), "y");  // evicts every t*
  CHECK(hub.topic_count() == 5);
  CHECK(hub.history_bytes() < 2'000);
}

TEST_CASE("hub: a topic held by a task still queued on a shard may outlive the hub") {
  // The io_context is never run: the delivery task posted by publish is destroyed with it, after the hub.
  asio::io_context ioc;
  asio::io_context* contexts[] = {&ioc};
  fanout::Runtime rt{std::span<asio::io_context* const>(contexts)};
  {
    fanout::Hub hub(rt);
    std::shared_ptr<fanout::detail::Topic> topic;
    std::size_t index = 0;
    fanout::detail::Replay replay;
    // A member that is never delivered to (the task never runs): its address is only stored.
    auto* member = reinterpret_cast<fanout::detail::Member*>(alignof(std::max_align_t));
    REQUIRE(fanout::detail::HubMembers::subscribe(hub, "t", 0, member, {}, nullptr, topic, index, replay) ==
            fanout::detail::SubscribeResult::ok);
    CHECK(hub.publish("t", std::string(1000, 'x')).shards == 1);
    CHECK(hub.history_bytes() > 1000);
  }  // the hub goes; the queued task still holds the topic (ASan checks what its destructor touches)
}

TEST_CASE("snapshot: bounded by keys and bytes; the key updated longest ago goes; seq order holds") {
  using fanout::detail::Snapshot;
  auto frame = [](std::uint64_t seq, std::size_t bytes = 10) {
    return Frame::make(Opcode::text, std::string(bytes, 'x'), {seq, 0});
  };
  Snapshot s;
  s.put("a", 1, frame(1), {}, 3, 1 << 20);
  s.put("b", 2, frame(2), {}, 3, 1 << 20);
  s.put("c", 3, frame(3), {}, 3, 1 << 20);
  s.put("a", 4, frame(4), {}, 3, 1 << 20);  // a is the newest now
  s.put("d", 5, frame(5), {}, 3, 1 << 20);  // b, updated longest ago, goes
  std::vector<std::string> keys;
  std::vector<std::uint64_t> seqs;
  for (const auto& e : s) {
    keys.push_back(e.key);
    seqs.push_back(e.seq);
  }
  CHECK(keys == std::vector<std::string>{"c", "a", "d"});
  CHECK(seqs == std::vector<std::uint64_t>{3, 4, 5});

  Snapshot b;  // bytes: a new key in every large message (issue 13, F6)
  for (std::uint64_t i = 1; i <= 100; ++i) b.put("k" + std::to_string(i), i, frame(i, 1000), {}, 4096, 10'000);
  CHECK(b.bytes() <= 10'000);
  CHECK(b.size() >= 5);
  CHECK(b.begin()->seq == 100 - b.size() + 1);
  Snapshot one;  // the newest stays whatever its size
  one.put("big", 1, frame(1, 50'000), {}, 10, 1000);
  CHECK(one.size() == 1);
  Snapshot none;
  none.put("k", 1, frame(1), {}, 0, 1 << 20);
  CHECK(none.size() == 0);
  CHECK(none.bytes() == 0);
}

TEST_CASE("hub: snapshots count in the byte budget: a new key in every large message cannot grow memory") {
  // The case of issue 13, F6: 4 topics, 60 KB messages, every one with a new key.
  fanout::Runtime rt({.shards = 1});
  fanout::Hub::Options o;
  o.max_history_bytes = 8u << 20;
  fanout::Hub hub(rt, o);
  const std::string payload(60'000, 'x');
  for (int i = 0; i < 2000; ++i)
    hub.publish("t" + std::to_string(i % 4), payload, fanout::Hub::PublishOptions{.key = "k" + std::to_string(i)});
  CHECK(hub.history_bytes() <= o.max_history_bytes);
  for (int t = 0; t < 4; ++t) {
    auto info = hub.topic("t" + std::to_string(t));
    REQUIRE(info);
    CHECK(info->snapshot_bytes <= o.history.max_snapshot_bytes);
    CHECK(info->snapshot_keys >= 1);
    auto snap = hub.snapshot("t" + std::to_string(t));
    REQUIRE(snap);
    CHECK(snap->messages.back().key == "k" + std::to_string(1996 + t));  // the newest key is kept
  }
  // A smaller total budget makes the topics give back snapshot keys too (history first).
  fanout::Hub::Options tight;
  tight.max_history_bytes = 400'000;
  fanout::Hub small(rt, tight);
  for (int i = 0; i < 400; ++i)
    small.publish("t" + std::to_string(i % 4), payload, fanout::Hub::PublishOptions{.key = "k" + std::to_string(i)});
  CHECK(small.history_bytes() <= 400'000 + 4 * 61'000);  // each topic keeps its newest message
  CHECK(small.topic("t0")->snapshot_keys <= 2);
}

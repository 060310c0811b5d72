#include "fanout/detail/session_delta.hpp"

#include <doctest/doctest.h>

#include <string>

#include "fanout/detail/delta_forms.hpp"
#include "fanout/detail/drop_notices.hpp"
#include "fanout/policy.hpp"

using fanout::BackpressureCounters;
using fanout::Frame;
using fanout::FrameRef;
using fanout::Opcode;
using fanout::OutboundQueue;
using fanout::OverflowContext;
using fanout::detail::DeltaForms;
using fanout::detail::SessionDelta;

namespace {

constexpr std::uint64_t k_topic = 7;

std::string tick(int i) {
  return R"({"instId":"BTC-USDT","last":")" + std::to_string(43000 + i) +
         R"(.5","bid":"43210.4","ask":"43210.6","vol24h":"12345.678","pad":"xxxxxxxxxxxxxxxxxxxxxxxx"})";
}

struct Stream {
  FrameRef previous;  // verbatim, as the hub's snapshot holds it
  FrameRef next(std::uint64_t seq) {
    FrameRef verbatim = Frame::make(Opcode::text, tick(static_cast<int>(seq)), {seq, 5});
    FrameRef form = DeltaForms::make("t", seq, "k", verbatim, previous.get(), 1 << 16);
    previous = verbatim;
    return form;
  }
};

void push(OutboundQueue& q, FrameRef f, BackpressureCounters& c, const OutboundQueue::Limits& limits = {}) {
  const OverflowContext ctx{
      .topic = "t", .topic_id = k_topic, .key_hash = 5, .session = nullptr, .limits = limits, .counters = c};
  q.push(std::move(f), ctx, *fanout::drop_oldest());
}

bool shown_as_delta(const OutboundQueue& q, std::size_t i) { return q.frame_at(i)->full() != q.frame_at(i); }

}  // namespace

TEST_CASE("delta forms: the full form carries the payload as a JSON string, the delta its base") {
  Stream s;
  FrameRef first = s.next(1);
  CHECK(first->delta_form());
  CHECK(first->delta() == nullptr);  // no base yet
  CHECK(first->payload_view().starts_with(R"({"topic":"t","seq":1,"key":"k","data":"{\"instId\")"));
  FrameRef second = s.next(2);
  REQUIRE(second->delta() != nullptr);
  CHECK(second->delta_base() == 1);
  CHECK(second->delta()->full() == second.get());
  CHECK(second->delta()->payload_view().starts_with(R"({"topic":"t","seq":2,"key":"k","delta":true,"data":")"));
  CHECK(second->delta()->size() < second->size());
  // Binary payloads have no delta form; a payload past the bound gets no delta.
  FrameRef bin = Frame::make(Opcode::binary, "\x01\x02", {3, 5});
  CHECK(DeltaForms::make("t", 3, "k", bin, second.get(), 1 << 16).get() == bin.get());
  FrameRef big = Frame::make(Opcode::text, tick(4), {4, 5});
  CHECK(DeltaForms::make("t", 4, "k", big, s.previous.get(), 16)->delta() == nullptr);
}

TEST_CASE("session delta: a delta only when the client was written its base") {
  Stream s;
  OutboundQueue q;
  BackpressureCounters c;
  SessionDelta d(16);
  d.add_topic(k_topic);
  push(q, s.next(1), c);
  push(q, s.next(2), c);
  push(q, s.next(3), c);
  d.choose(q, 1 << 20);
  CHECK_FALSE(shown_as_delta(q, 0));  // nothing written yet: full
  CHECK(shown_as_delta(q, 1));        // its base goes out just before it, in the same write
  CHECK(shown_as_delta(q, 2));
  std::size_t all = 0;
  for (std::size_t i = 0; i < q.frames(); ++i) all += q.unwritten(i).size();
  d.commit(q, all);
  q.consume(all);
  CHECK(d.deltas_written == 2);

  SUBCASE("the next one follows the written chain") {
    push(q, s.next(4), c);
    d.choose(q, 1 << 20);
    CHECK(shown_as_delta(q, 0));
  }
  SUBCASE("a dropped base means a full message") {
    push(q, s.next(4), c);
    push(q, s.next(5), c);
    d.choose(q, 1 << 20);  // 4 as a delta of 3 (written), 5 as a delta of 4
    CHECK(shown_as_delta(q, 0));
    CHECK(shown_as_delta(q, 1));
    CHECK(q.drop_oldest(c));  // the policy drops 4 before it was written
    d.choose(q, 1 << 20);
    CHECK_FALSE(shown_as_delta(q, 0));  // 5 goes out in full
  }
  SUBCASE("a partial write: only what it started is written") {
    push(q, s.next(4), c);
    push(q, s.next(5), c);
    d.choose(q, 1 << 20);
    d.commit(q, 1);  // one byte of 4
    q.consume(1);
    CHECK(q.drop_oldest(c));  // drops 5 (4 is started and stays)
    push(q, s.next(6), c);
    d.choose(q, 1 << 20);
    CHECK_FALSE(shown_as_delta(q, 1));  // 6's base, 5, never went out
  }
  SUBCASE("an unsubscribe forgets the chain") {
    d.remove_topic(k_topic);
    d.add_topic(k_topic);
    push(q, s.next(4), c);
    d.choose(q, 1 << 20);
    CHECK_FALSE(shown_as_delta(q, 0));
  }
}

TEST_CASE("drop notices: counted per topic, at most one per interval") {
  fanout::detail::DropNotices n;
  n.add_topic(1);
  n.on_drop(1);
  n.on_drop(1);
  n.on_drop(2);  // not asked for
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> sent;
  const auto send = [&](std::uint64_t topic, std::uint64_t count) {
    sent.emplace_back(topic, count);
    return true;
  };
  n.flush(t0, std::chrono::seconds(1), send);
  CHECK(sent == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{1, 2}});
  n.on_drop(1);
  n.flush(t0 + std::chrono::milliseconds(10), std::chrono::seconds(1), send);
  CHECK(sent.size() == 1);  // coalesced: too soon
  n.on_drop(1);
  n.flush(t0 + std::chrono::seconds(1), std::chrono::seconds(1), send);
  CHECK(sent.back() == std::pair<std::uint64_t, std::uint64_t>{1, 2});
  // A notice that could not be queued keeps its count for the next try.
  n.on_drop(1);
  n.flush(t0 + std::chrono::seconds(3), std::chrono::seconds(1), [](std::uint64_t, std::uint64_t) { return false; });
  n.on_drop(1);
  n.flush(t0 + std::chrono::seconds(3), std::chrono::seconds(1), send);
  CHECK(sent.back() == std::pair<std::uint64_t, std::uint64_t>{1, 2});
}

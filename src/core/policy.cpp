#include "fanout/policy.hpp"

#include <stdexcept>
#include <string>

namespace fanout {
namespace {

using Verdict = BackpressurePolicy::Verdict;

struct DropNewest final : BackpressurePolicy {
  std::string_view name() const noexcept override { return "drop_newest"; }
  Verdict on_overflow(OutboundQueue&, FrameRef&, const OverflowContext&) override { return Verdict::drop; }
};

struct DropOldest final : BackpressurePolicy {
  std::string_view name() const noexcept override { return "drop_oldest"; }
  Verdict on_overflow(OutboundQueue& q, FrameRef& f, const OverflowContext& ctx) override {
    while (!q.fits(f->size(), ctx.limits) && q.drop_oldest(ctx.counters)) {
    }
    return Verdict::enqueue;
  }
};

struct Conflate final : BackpressurePolicy {
  std::string_view name() const noexcept override { return "conflate"; }
  Verdict on_overflow(OutboundQueue& q, FrameRef& f, const OverflowContext& ctx) override {
    // A same-sized newer value of the topic takes the old one's place: the queue never grows.
    if (q.replace_latest_of_topic(ctx.topic_id, f, ctx.counters)) {
      while (q.bytes() > ctx.limits.max_bytes && q.drop_oldest(ctx.counters)) {
      }
      return Verdict::placed;
    }
    while (!q.fits(f->size(), ctx.limits) && q.drop_oldest(ctx.counters)) {
    }
    return Verdict::enqueue;
  }
};

struct Disconnect final : BackpressurePolicy {
  std::string_view name() const noexcept override { return "disconnect"; }
  Verdict on_overflow(OutboundQueue&, FrameRef&, const OverflowContext&) override { return Verdict::disconnect; }
};

}  // namespace

std::shared_ptr<BackpressurePolicy> drop_newest() {
  static auto p = std::make_shared<DropNewest>();
  return p;
}
std::shared_ptr<BackpressurePolicy> drop_oldest() {
  static auto p = std::make_shared<DropOldest>();
  return p;
}
std::shared_ptr<BackpressurePolicy> conflate() {
  static auto p = std::make_shared<Conflate>();
  return p;
}
std::shared_ptr<BackpressurePolicy> disconnect() {
  static auto p = std::make_shared<Disconnect>();
  return p;
}

std::shared_ptr<BackpressurePolicy> policy_by_name(std::string_view name) {
  if (name == "drop_newest") return drop_newest();
  if (name == "drop_oldest") return drop_oldest();
  if (name == "conflate") return conflate();
  if (name == "disconnect") return disconnect();
  throw std::invalid_argument("fanout: unknown backpressure policy '" + std::string(name) +
                              "' (drop_newest, drop_oldest, conflate, disconnect)");
}

}  // namespace fanout

// fanout/policy.hpp — what a session does when a client cannot keep up.
//
// Every session has OutboundQueue::Limits. When a data frame would push its queue past them, the
// session's BackpressurePolicy decides: make room by dropping or conflating queued frames, drop the
// new frame, or disconnect the client (close 1008). One slow client therefore never delays another
// and never holds more than its limit.
//
// Built-in policies (stateless, shared): drop_newest(), drop_oldest(), conflate(), disconnect().
// A session's policy is Session::Options::policy, unless Server::Callbacks::on_open chose another
// for that client with Session::set_policy (e.g. conflate for browsers, disconnect for internal
// consumers). A user policy derives from BackpressurePolicy and sees the frame's topic, key and
// session in an OverflowContext:
//
//   struct KeepControlOnly : fanout::BackpressurePolicy {
//     std::string_view name() const noexcept override { return "mine"; }
//     Verdict on_overflow(fanout::OutboundQueue& q, fanout::FrameRef& f, const fanout::OverflowContext& ctx) override {
//       if (ctx.topic.starts_with("audit.")) return Verdict::disconnect;  // never lose these silently
//       while (!q.fits(f->size(), ctx.limits) && q.drop_oldest(ctx.counters)) {}
//       return Verdict::enqueue;
//     }
//   };
//
// Thread safety: on_overflow runs on the session's shard thread; a policy object shared by
// sessions of several shards must be stateless or synchronise itself.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "fanout/export.hpp"
#include "fanout/outbound_queue.hpp"

namespace fanout {

class Session;

/// What a policy knows about a frame that does not fit its session's queue.
struct FANOUT_API OverflowContext {
  std::string_view topic;               // the topic's name
  std::uint64_t topic_id = 0;           // the topic's identity in queues (OutboundQueue::replace_latest_of_topic)
  std::uint32_t key_hash = 0;           // of the message's key (Hub::PublishOptions::key); 0: no key
  const Session* session = nullptr;     // the client (id(), user_data(), queued_bytes()); null for a bare queue
  const OutboundQueue::Limits& limits;  // the session's queue limits
  BackpressureCounters& counters;       // what the policy did: drop_oldest() and the queue count here
};

class FANOUT_API BackpressurePolicy {
 public:
  enum class Verdict {
    enqueue,     // append the new frame (dropped anyway, as dropped_newest, if it still does not fit)
    drop,        // discard the new frame
    disconnect,  // close the client with 1008
    placed,      // the policy put the frame in the queue itself (e.g. replace_latest_of_topic)
  };
  virtual ~BackpressurePolicy() = default;
  virtual std::string_view name() const noexcept = 0;
  /// Called when `frame` does not fit `context.limits`. May drop or replace queued frames.
  virtual Verdict on_overflow(OutboundQueue& queue, FrameRef& frame, const OverflowContext& context) = 0;
};

/// Keep what is queued, discard the new frame.
FANOUT_API std::shared_ptr<BackpressurePolicy> drop_newest();
/// Discard the oldest queued frames until the new one fits.
FANOUT_API std::shared_ptr<BackpressurePolicy> drop_oldest();
/// Replace the queued frame of the same topic and key by the new one (only the newest value per
/// (topic, key) survives, delivered in seq order); when none is queued, drop the oldest. Market data
/// wants this: a slow client sees the latest price of every instrument, never a stale one.
FANOUT_API std::shared_ptr<BackpressurePolicy> conflate();
/// Close the client with 1008 "slow consumer".
FANOUT_API std::shared_ptr<BackpressurePolicy> disconnect();

/// The built-in policy called `name` ("drop_newest", "drop_oldest", "conflate", "disconnect").
FANOUT_API std::shared_ptr<BackpressurePolicy> policy_by_name(std::string_view name);

}  // namespace fanout

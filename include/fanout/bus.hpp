// fanout/bus.hpp — links fanout nodes through a broker: ingest nodes publish routed messages, edge
// nodes receive the topics their own clients are subscribed to and publish them into their Hub.
//
//   fanout::RedisBus bus(io, {.host = "127.0.0.1", .port = 6379});
//   bus.attach(hub);                        // edge: follows the hub's topics with members
//   bus.start();
//   bus.publish({.topic = "trades:BTC-USDT", .payload = msg, .fence = lease.fence()}, "okx");  // ingest
//
// Thread safety: see the implementation (RedisBus: every member function from any thread).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "fanout/export.hpp"
#include "fanout/bus_message.hpp"

namespace fanout {

class Hub;

class FANOUT_API Bus {
 public:
  /// A message for this node: seq and fence are set, views are valid during the call only.
  using Handler = std::function<void(const BusMessage& message)>;
  /// Called when the broker refused a publish because `stream`'s fencing number moved on: this node
  /// is no longer the leader of that stream and must stop ingesting it.
  using FencedHandler = std::function<void(std::string_view stream, std::uint64_t fence)>;

  virtual ~Bus() = default;

  /// Publishes `m` (its seq is ignored: the bus assigns it). `stream` names the leadership that
  /// `m.fence` was won for; with fence 0 the message is not fenced.
  virtual void publish(const BusMessage& m, std::string_view stream) = 0;
  /// Reference-counted interest in a topic: the first subscribe starts receiving it, the last
  /// unsubscribe stops.
  virtual void subscribe(std::string_view topic) = 0;
  virtual void unsubscribe(std::string_view topic) = 0;
  /// Receives messages of subscribed topics in seq order, without duplicates.
  virtual void set_handler(Handler handler) = 0;
  virtual void set_fenced_handler(FencedHandler handler) = 0;
  /// Where a topic that gets interest again should continue from (the last seq this node has, e.g.
  /// Hub::last_seq): the bus then reads what was missed from the broker's history, if that is at most
  /// one catch-up batch; otherwise it starts live. Without it, a topic starts live.
  using ResumePoint = std::function<std::uint64_t(std::string_view topic)>;
  virtual void set_resume_point(ResumePoint resume_point) = 0;

  /// Whether `topic` exists in the cluster (an ingest node published or declared it), as far as this
  /// node has learnt. Any thread. A bus that cannot tell answers false: clients of an edge then join
  /// only topics its hub already holds.
  virtual bool knows_topic(std::string_view topic) const;
  /// Ingest: makes `topic` known to every node before its first message (a declared topic).
  virtual void declare_topic(std::string_view topic);

  /// Edge wiring: subscribes to the topics `hub` has members for (through its activity observer),
  /// publishes what arrives into it with the bus's seq, resumes a topic from the hub's last seq, and
  /// lets clients join the topics the cluster has (the hub's topic directory is knows_topic).
  /// Call before the hub has members.
  void attach(Hub& hub);
};

/// Publishes a bus message into a hub, keeping the bus's seq (the one place this happens).
FANOUT_API void publish_to_hub(Hub& hub, const BusMessage& m);

}  // namespace fanout

// fanout/group.hpp — a topic's members, and the bounds on the log they pull from.
//
// Each topic has one Group per shard: the sessions of that shard subscribed to it. A publish
// appends its frame to the group's log once; each member moves what is new into its own queue when
// it is about to write (docs/architecture.md, "the path of one message"). The log's bounds are
// settings of the Hub:
//
//   fanout::Hub::Options o;
//   o.group.log_trim_frames = 128;  // keep less behind members that have not written yet
//   fanout::Hub hub(runtime, o);    // throws std::invalid_argument if the limits make no sense
//
// Thread safety: members join and leave on their session's shard thread, through
// Session::subscribe / Session::unsubscribe (the server side) or the control protocol (the
// client side). Hub::subscriber_count(topic) reads the members over all shards from any thread.
// Limits are fixed when the Hub is built.
#pragma once

#include <cstddef>
#include <stdexcept>

#include "fanout/export.hpp"

namespace fanout {

class FANOUT_API Group {
 public:
  /// Bounds on the frames a group keeps for members that have not pulled them yet. Past
  /// log_trim_frames, the frames every member has are dropped after a publish. Past log_max_frames
  /// or log_max_bytes, a member is behind for too long (its sweep of writes has not reached it):
  /// every member still behind is handed what it lacks at once, into its queue and its
  /// backpressure policy, as eager delivery would, and the log empties. 0 for either maximum:
  /// every publish is delivered that way.
  struct Limits {
    std::size_t log_trim_frames = 512;
    std::size_t log_max_frames = 4096;
    std::size_t log_max_bytes = 4u << 20;
  };

  /// Throws std::invalid_argument for limits that make no sense (log_trim_frames > log_max_frames).
  /// The Hub calls it at construction.
  static void check(const Limits& limits) {
    if (limits.log_trim_frames > limits.log_max_frames)
      throw std::invalid_argument("fanout: Group::Limits::log_trim_frames above log_max_frames");
  }

  Group() = delete;  // the per-shard members and their log are internal (detail/group.hpp)
};

}  // namespace fanout

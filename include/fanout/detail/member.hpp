// fanout/detail/member.hpp — a topic's member as the engine core sees it: the few fields the publish
// walk reads and writes, as plain data, and the hooks it calls off the hot path. Session (the
// network layer) is one; the core includes nothing of it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fanout/session_state.hpp"

namespace fanout {
struct BackpressureCounters;
namespace detail {
class Shard;
struct Topic;
struct Group;

class Member {
 public:
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

 protected:
  Member() = default;
  virtual ~Member() = default;

  /// Writes what is queued (the shard's flush, once per loop turn, for members marked dirty).
  virtual void flush() = 0;
  /// Queues the frames of `group`'s log past member `i`'s cursor, and unflags it. The walk calls it
  /// only for a member it cannot flag (blocked or closing), and Group::bound_log past the log's max.
  virtual void pull(Topic& topic, Group& group, std::size_t i, BackpressureCounters& counters) = 0;

  // The publish walk reads these and, in steady state, nothing else of a member: right after the
  // vtable pointer, in one cache line (Shard::prefetch_hot fetches it).
  bool dirty_ = false;             // in the shard's flush list
  bool waiting_writable_ = false;  // one write in flight: the socket is blocked
  SessionState state_ = SessionState::handshake;
  std::uint32_t pulls_due_ = 0;  // groups that flagged this member and wait for its pull

 private:
  friend class Shard;
};

}  // namespace detail
}  // namespace fanout

// fanout/detail/drop_notices.hpp — a session's {"event":"dropped","arg":T,"count":N} notices, for the
// subscriptions that asked ("drop_notices":true, docs/protocol.md "Drop notices").
//
// The queue tells it the topic of every frame its policy drops or replaces (OutboundQueue's
// DropObserver); it counts them per topic and hands out at most one notice per topic per interval
// (Session::Options::drop_notice_interval), carrying everything counted since the last one. The
// session queues notices as control replies: the policy never drops them; when even the control
// reserve is full the count waits for the next try.
//
// Thread safety: none; it belongs to a session, on its shard's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "fanout/outbound_queue.hpp"

namespace fanout::detail {

class DropNotices final : public DropObserver {
 public:
  void add_topic(std::uint64_t topic_id) { topics_.push_back({topic_id}); }
  void remove_topic(std::uint64_t topic_id);
  bool has_topic(std::uint64_t topic_id) const noexcept;
  bool empty() const noexcept { return topics_.empty(); }

  void on_drop(std::uint64_t topic_id) noexcept override;

  /// Calls `send(topic_id, count)` for each topic with drops whose last notice is at least `interval`
  /// old; a topic whose send returned true starts counting again from 0.
  template <class Send>
  void flush(std::chrono::steady_clock::time_point now, std::chrono::milliseconds interval, Send&& send) {
    if (!pending_) return;
    pending_ = false;
    for (auto& t : topics_) {
      if (t.count == 0) continue;
      if (t.last != std::chrono::steady_clock::time_point{} && now - t.last < interval) {
        pending_ = true;  // later, at a tick
        continue;
      }
      if (send(t.id, t.count)) {
        t.count = 0;
        t.last = now;
      } else {
        pending_ = true;
      }
    }
  }

 private:
  struct Topic {
    std::uint64_t id;
    std::uint64_t count = 0;                       // dropped since the last notice
    std::chrono::steady_clock::time_point last{};  // of the last notice
  };
  std::vector<Topic> topics_;
  bool pending_ = false;  // some topic has a count to report
};

}  // namespace fanout::detail

// fanout/detail/topic.hpp — a topic's shared record: per-shard member groups (group.hpp), and under its mutex the
// seq counter, the history ring and the latest value per key; under the hub's, where it came from.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/detail/group.hpp"
#include "fanout/detail/history.hpp"
#include "fanout/detail/lane.hpp"
#include "fanout/frame.hpp"
#include "fanout/hub.hpp"

namespace fanout {
namespace detail {

struct HistoryLimits {
  std::size_t max_messages = 0;
  std::size_t max_bytes = 0;
  std::size_t max_keys = 0;
  std::size_t max_snapshot_bytes = 0;
};

/// Who brought a topic into existence, which decides its budget and when it may be forgotten.
enum class TopicOrigin : std::uint8_t {
  publisher,  // a publish, the topic directory or the application's Session::subscribe: max_topics;
              // forgotten when idle the longest and room is needed, or at its last leave if unpublished
  declared,   // Hub::declare: max_topics, never forgotten
  client,     // a client's subscribe (ClientTopics): its own budget; forgotten at its last leave
};

/// The client asking a Hub for a topic: its connection, and its network (an IPv4 address, or the /64
/// of an IPv6 one: one host there commonly holds the whole /64), opaque numbers to the core.
struct Requester {
  std::uint64_t connection = 0;
  std::uint64_t network_hi = 0;
  std::uint64_t network_lo = 0;
};

/// A topic record's identity in sessions' queues (OverflowContext::topic_id): never 0 (control
/// frames), never reused within the process.
inline std::uint64_t next_topic_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

struct Topic {
  Topic(std::string n, std::size_t shards, HistoryLimits l, const fanout::Group::Limits& group_limits, std::uint64_t e,
        std::shared_ptr<std::atomic<std::int64_t>> total)
      : name(std::move(n)),
        epoch(e),
        groups(new Group[shards]),
        lanes(new std::unique_ptr<Lane>[shards]),
        limits(l),
        history_total(std::move(total)) {
    for (std::size_t i = 0; i < shards; ++i) groups[i].limits = group_limits;
  }
  ~Topic() {
    history_total->fetch_sub(static_cast<std::int64_t>(history.bytes() + latest.bytes()), std::memory_order_relaxed);
  }
  Topic(const Topic&) = delete;
  Topic& operator=(const Topic&) = delete;

  const std::string name;
  const std::uint64_t id = next_topic_id();
  /// Random per topic record: a client's `since` from another epoch cannot be trusted (restart).
  const std::uint64_t epoch;
  /// Bit i set while shard i has at least one member: publish posts only to those shards.
  std::atomic<std::uint64_t> shard_mask{0};
  /// Members over all shards.
  std::atomic<std::int64_t> members{0};
  std::unique_ptr<Group[]> groups;
  /// Per shard, the throttled members' lanes, one per distinct interval (lane.hpp); shard thread only.
  std::unique_ptr<std::unique_ptr<Lane>[]> lanes;

  // ---- guarded by the hub's mutex ----
  TopicOrigin origin = TopicOrigin::publisher;
  Requester creator{};         // origin client: whose budget it counts against
  bool idle = false;           // in the hub's idle list (a publisher's topic without members)
  Topic* idle_prev = nullptr;  // toward the topic idle the longest
  Topic* idle_next = nullptr;

  // ---- guarded by mutex (publishers on any thread, subscribers on shard threads, HTTP) ----
  mutable std::mutex mutex;
  const HistoryLimits limits;
  std::uint64_t seq = 0;             // last published
  bool erased = false;               // left the hub's map unpublished (Hub::unsubscribe): publish looks again
  std::size_t envelope_members = 0;  // members that want envelopes: publish builds one when > 0
  History history;
  // The hub's sum over all topics (Hub::Options::max_history_bytes). Shared: a topic held by a task still
  // queued on a shard may be destroyed after the hub.
  const std::shared_ptr<std::atomic<std::int64_t>> history_total;
  Snapshot latest;  // newest message per key ("" when none), in seq order
  std::uint64_t published = 0;
  std::chrono::steady_clock::time_point window_start{};
  std::uint64_t window_count = 0;
  double rate = 0;  // messages/s over the last full window
};

enum class SubscribeResult {
  ok,
  invalid_topic,
  unknown_topic,       // clients may not create topics (ClientTopics::allow), and nobody knows this one
  too_many_topics,     // max_topics (the application's join) or ClientTopics::max_topics
  connection_limit,    // ClientTopics::max_per_connection
  address_limit,       // ClientTopics::max_per_address
  too_many_intervals,  // Hub::Options::max_intervals_per_topic distinct intervals on this shard already
};

/// What a subscriber asks for besides live messages.
struct Recovery {
  bool has_since = false;
  std::uint64_t since = 0;        // replay messages with seq > since
  std::uint64_t epoch = 0;        // 0: not given; another epoch than the topic's forces a resync
  bool snapshot = false;          // latest value per key first
  bool envelope = false;          // the frames wanted are envelopes
  std::uint32_t interval_ms = 0;  // > 0: live frames at most once per key per interval (lane.hpp)
};

/// What the subscriber gets before live messages, in order.
struct Replay {
  std::uint64_t seq = 0;  // the topic's seq at subscription: live frames follow with seq > this
  std::uint64_t epoch = 0;
  bool resync = false;      // `since` could not be served from history: `frames` is the snapshot
  std::uint64_t first = 0;  // with resync: the oldest seq the history still had (0: none)
  std::vector<FrameRef> frames;
};

/// The Hub's member-side API: how a session joins and leaves a topic, on its shard's thread.
struct HubMembers {
  /// Adds `s` to `topic`'s members on `shard`. `out` receives the topic record the session keeps,
  /// `index` the session's place in the member list (unsubscribe tells who moves).
  /// `requester`: the client whose request this is (it may create the topic only as ClientTopics
  /// allows); nullptr: the application's own join.
  static SubscribeResult subscribe(Hub& hub, std::string_view topic, std::size_t shard, Member* s,
                                   const Recovery& recovery, const Requester* requester, std::shared_ptr<Topic>& out,
                                   std::size_t& index, Replay& replay) {
    return hub.subscribe(topic, shard, s, recovery, requester, out, index, replay);
  }
  /// Removes `s`, at `index` in the member list; `topic` is the record subscribe() gave. Returns the
  /// member moved into place `index` (it must learn its new place), or nullptr.
  /// `interval_ms`: the subscription's (Recovery::interval_ms), 0 when not throttled.
  static Member* unsubscribe(Hub& hub, const std::shared_ptr<Topic>& topic, std::size_t shard, std::size_t index,
                             Member* s, bool envelope, std::uint32_t interval_ms = 0) {
    return hub.unsubscribe(topic, shard, index, s, envelope, interval_ms);
  }
  /// The group a member subscribed with `interval_ms` belongs to on `shard` (its lane's, when throttled).
  static Group& group_of(Topic& topic, std::size_t shard, std::uint32_t interval_ms) noexcept {
    if (interval_ms != 0)
      if (Lane* lane = find_lane(topic.lanes[shard], interval_ms)) return lane->group;
    return topic.groups[shard];
  }
};

}  // namespace detail
}  // namespace fanout

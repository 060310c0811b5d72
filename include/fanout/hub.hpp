// fanout/hub.hpp — the topic registry and the fan-out.
//
// publish() numbers the message (seq per topic), encodes it once into a Frame, keeps it in the
// topic's history and hands it once to every shard that has members of the topic. There it is
// appended to the topic's Group log, and each member moves what is new into its own queue when it
// is about to write (docs/architecture.md, "the path of one message"). Nothing is copied or
// allocated per recipient.
//
//   fanout::Hub hub(runtime);
//   auto r = hub.publish("trades.BTC-USDT", R"({"px":"64000.5","sz":"0.01"})");
//   if (r.accepted()) { /* r.seq */ }
//   hub.add_publish_observer([&](const fanout::Hub::Published& m) { sinks.offer(m.topic, m.payload, m.seq); });
//
// Thread safety: publish() and every query from any thread, concurrently. Observers are added
// before publishing starts. Clients join and leave topics through their Session
// (Session::subscribe, or the control protocol), on the session's shard thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fanout/export.hpp"
#include "fanout/frame.hpp"
#include "fanout/group.hpp"

namespace fanout {

class Runtime;
class Session;
namespace detail {
class Member;
struct Topic;
struct HistoryLimits;
struct HubMembers;
enum class SubscribeResult;
struct Recovery;
struct Replay;
}  // namespace detail

class FANOUT_API Hub {
 public:
  /// What each topic keeps for recovery (`since`), snapshots and the HTTP pull endpoints. Memory per
  /// topic stays under max_bytes of history plus max_keys latest values.
  struct History {
    std::size_t max_messages = 1024;     // 0: no history (seq still counts)
    std::size_t max_bytes = 512 * 1024;  // of frames kept, envelopes included
    std::size_t max_keys = 4096;         // latest values kept per topic (snapshot); 0: none
  };

  struct Options {
    std::size_t max_topics = 100'000;            // topic records at once; the least recently created without members
                                                 // is forgotten first, and when none can go, new topics are refused
    std::size_t max_topic_bytes = 256;           // longest topic name
    History history{};                           // per topic, unless a prefix rule below matches
    std::size_t max_history_bytes = 256u << 20;  // over all topics: past it, a publishing topic
                                                 // trims its own history (to one message at least)
    std::vector<std::pair<std::string, History>> history_by_prefix{};  // first matching prefix wins
    Group::Limits group{};  // bounds on the log each topic's members pull from (group.hpp); checked here
  };

  /// Called under the hub's lock when a topic gets its first member (active) or loses its last, from
  /// the shard thread where it happened. It must not call the Hub: post the work elsewhere (a Bus
  /// subscribes upstream of this node only for topics with members).
  using ActivityObserver = std::function<void(std::string_view topic, bool active)>;

  /// How a message is published. With `seq` given (an upstream's own numbering, or a Bus carrying the
  /// ingest node's), a message whose seq is not above the topic's last is a duplicate and ignored; a
  /// jump is accepted and visible to clients as a gap. Without, the hub numbers 1, 2, 3... per topic.
  struct PublishOptions {
    std::string_view key{};  // e.g. instrument id: the snapshot keeps the newest message per key
    std::uint64_t seq = 0;   // 0: the hub assigns last + 1
    Opcode op = Opcode::text;
  };

  struct TopicInfo {
    std::string name;
    std::size_t members = 0;
    std::uint64_t seq = 0;
    std::uint64_t epoch = 0;
    double rate = 0;  // messages/s over the last second
    std::size_t history_messages = 0;
    std::size_t history_bytes = 0;
  };

  struct Message {
    std::uint64_t seq = 0;
    std::string key;
    std::string payload;
  };

  /// Messages of a topic: its history after some seq, or its snapshot (latest value per key).
  struct Messages {
    std::uint64_t seq = 0;    // the topic's last seq when read
    std::uint64_t epoch = 0;  // see Topic
    std::uint64_t first = 0;  // oldest seq still in the history (0: none)
    bool truncated = false;   // `since` was older than the history: messages between are lost
    std::vector<Message> messages;
  };

  explicit Hub(Runtime& runtime);
  /// Throws std::invalid_argument for options that make no sense (Group::check).
  Hub(Runtime& runtime, Options options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  /// What publish() did with a message (like uWebSockets' SendStatus: an answer, not a count).
  struct PublishResult {
    enum class Status : std::uint8_t {
      accepted,         // numbered, kept in the history, posted to every shard with members
      duplicate,        // PublishOptions::seq was not above the topic's last seq: ignored
      invalid_topic,    // see valid_topic()
      too_many_topics,  // Options::max_topics reached and no idle topic could be forgotten
    };
    Status status = Status::accepted;
    std::uint64_t seq = 0;   // accepted: the message's seq; duplicate: the topic's last seq
    std::size_t shards = 0;  // accepted: shards it was posted to (0: no member on this node)
    bool accepted() const noexcept { return status == Status::accepted; }
  };
  static const char* to_string(PublishResult::Status s) noexcept;

  /// Sends `payload` as one WebSocket message (text by default) to every subscriber of `topic`, and
  /// keeps it in the topic's history.
  PublishResult publish(std::string_view topic, std::string_view payload, Opcode op = Opcode::text);
  PublishResult publish(std::string_view topic, std::string_view payload, const PublishOptions& options);

  /// An accepted message, as publish observers see it. The views are valid during the call only.
  struct Published {
    std::string_view topic;
    std::string_view payload;
    std::string_view key;
    std::uint64_t seq = 0;
    Opcode op = Opcode::text;
  };
  /// Sees every accepted message once (sinks attach here instead of beside every publish call).
  /// Runs on the publishing thread under the topic's lock, so one topic's messages arrive in seq
  /// order; it must be quick and must not call the Hub (SinkSet::offer qualifies: it never blocks).
  using PublishObserver = std::function<void(const Published&)>;
  /// Adds an observer. Before the first publish, or while the caller knows no publish runs.
  void add_publish_observer(PublishObserver observer);

  /// The topic's last seq (0: unknown topic or nothing published yet).
  std::uint64_t last_seq(std::string_view topic) const;
  std::size_t topic_count() const;
  /// Topics with at least one member now (topic_count() also counts topics kept for their history).
  std::size_t active_topic_count() const noexcept { return active_topics_.load(std::memory_order_relaxed); }
  std::size_t subscriber_count(std::string_view topic) const;
  std::uint64_t published() const noexcept { return published_.load(std::memory_order_relaxed); }
  std::uint64_t duplicates() const noexcept { return duplicates_.load(std::memory_order_relaxed); }
  /// Bytes held by every topic's history (see Options::max_history_bytes).
  std::size_t history_bytes() const noexcept {
    return static_cast<std::size_t>(std::max<std::int64_t>(0, history_bytes_->load(std::memory_order_relaxed)));
  }
  const Options& options() const noexcept { return options_; }
  /// Every topic, sorted by name.
  std::vector<TopicInfo> topics() const;
  std::optional<TopicInfo> topic(std::string_view name) const;
  /// Up to `limit` messages with seq > since, oldest first. nullopt: unknown topic.
  std::optional<Messages> history(std::string_view topic, std::uint64_t since, std::size_t limit) const;
  /// The latest message per key, in seq order. nullopt: unknown topic.
  std::optional<Messages> snapshot(std::string_view topic) const;

  /// Sets (or clears, with an empty function) the activity observer. Before members exist, or while
  /// the caller knows no subscribe or unsubscribe runs.
  void set_activity_observer(ActivityObserver observer);

  /// Topic names accepted by subscribe: 1..max_topic_bytes bytes, printable ASCII or UTF-8, no spaces or commas.
  bool valid_topic(std::string_view name) const noexcept;

 private:
  // Sessions join and leave through detail::HubMembers (detail/topic.hpp), on their shard's thread.
  friend struct detail::HubMembers;
  using SubscribeResult = detail::SubscribeResult;
  using Recovery = detail::Recovery;
  using Replay = detail::Replay;
  /// Adds `s` to `topic`'s members on `shard`. `out` receives the topic record the session keeps,
  /// `index` the session's place in the member list (unsubscribe tells who moves).
  SubscribeResult subscribe(std::string_view topic, std::size_t shard, detail::Member* s, const Recovery& recovery,
                            std::shared_ptr<detail::Topic>& out, std::size_t& index, Replay& replay);
  /// Removes `s`, at `index` in the member list; `topic` is the record subscribe() gave. Returns the
  /// member moved into place `index` (it must learn its new place), or nullptr.
  detail::Member* unsubscribe(const std::shared_ptr<detail::Topic>& topic, std::size_t shard, std::size_t index,
                              detail::Member* s, bool envelope);

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::shared_ptr<detail::Topic> find(std::string_view topic) const;
  /// Finds or creates (evicting an idle topic when full); nullptr when refused. Hub lock held.
  std::shared_ptr<detail::Topic> find_or_create_locked(std::string_view topic);
  detail::HistoryLimits limits_for(std::string_view topic) const noexcept;

  Runtime& runtime_;
  Options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<detail::Topic>, Hash, std::equal_to<>> topics_;
  std::deque<std::weak_ptr<detail::Topic>> creation_order_;  // eviction candidates, oldest first
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::shared_ptr<std::atomic<std::int64_t>> history_bytes_ = std::make_shared<std::atomic<std::int64_t>>(0);
  std::atomic<std::size_t> active_topics_{0};
  ActivityObserver observer_;
  std::vector<PublishObserver> publish_observers_;
};

}  // namespace fanout

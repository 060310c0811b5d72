// fanout/hub.hpp — the topic registry and the fan-out.
//
// publish() numbers the message (seq per topic), encodes it once into a Frame, keeps it in the
// topic's history and hands it once to every shard that has members of the topic. There it is
// appended to the topic's Group log, and each member moves what is new into its own queue when it
// is about to write (docs/architecture.md, "the path of one message"). Nothing is copied or
// allocated per recipient.
//
//   fanout::Hub hub(runtime);
//   hub.declare("news");  // clients may join it before its first message (they create no topics)
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
struct Requester;
enum class TopicOrigin : std::uint8_t;
enum class SubscribeResult;
struct Recovery;
struct Replay;
}  // namespace detail

class FANOUT_API Hub {
 public:
  /// What each topic keeps for recovery (`since`), snapshots and the HTTP pull endpoints. Memory per
  /// topic stays under max_bytes of history plus max_snapshot_bytes of latest values.
  struct History {
    std::size_t max_messages = 1024;            // 0: no history (seq still counts)
    std::size_t max_bytes = 512 * 1024;         // of frames kept, envelopes included
    std::size_t max_keys = 4096;                // latest values kept per topic (snapshot); 0: none
    std::size_t max_snapshot_bytes = 1u << 20;  // of those latest values; past either bound the key
                                                // updated longest ago is forgotten (the newest stays)
  };

  /// Whether a client's subscribe may bring a topic into existence. By default it may not: topics come
  /// from publishes (upstreams, a Bus), declare(), the topic directory (an edge node's view of the
  /// cluster) and the application's own Session::subscribe; a client asking for any other name gets
  /// error 4008 (unknown topic). Allowed, client-created topics have a budget of their own, so clients
  /// can never take the places of publishers' topics; a client-created topic is forgotten when its last
  /// member leaves, unless something was published to it first (it is then a publisher's topic).
  /// Every check is a hash lookup or a counter under the hub's lock (docs/security.md, "Topics").
  struct ClientTopics {
    bool allow = false;                   // a client's subscribe to an unknown topic creates it
    std::size_t max_topics = 10'000;      // client-created topics at once, over all clients
    std::size_t max_per_connection = 16;  // existing topics one connection created
    std::size_t max_per_address = 256;    // existing topics created from one IPv4 address or IPv6 /64; 0: any
  };

  struct Options {
    std::size_t max_topics = 100'000;            // topics of publishers, declare() and the application at once
                                                 // (client-created ones are counted apart, below); past it the
                                                 // topic idle (without members) the longest is forgotten, and
                                                 // when none is idle new topics are refused; declared ones stay
    std::size_t max_topic_bytes = 256;           // longest topic name
    History history{};                           // per topic, unless a prefix rule below matches
    std::size_t max_history_bytes = 256u << 20;  // history and snapshots over all topics: past it, a publishing
                                                 // topic trims its own history, then its snapshot (to one each)
    ClientTopics client_topics{};
    std::vector<std::string> topics{};  // declared at construction (declare()), e.g. from configuration
    std::vector<std::pair<std::string, History>> history_by_prefix{};  // first matching prefix wins
    Group::Limits group{};  // bounds on the log each topic's members pull from (group.hpp); checked here
    // Throttled subscriptions ("interval_ms", docs/protocol.md): members of a topic on one shard with
    // the same interval share one conflating buffer and one flush per tick. Distinct intervals per
    // topic per shard, at most; a subscribe with one more gets error 4422.
    std::size_t max_intervals_per_topic = 8;
  };

  /// Called under the hub's lock when a topic gets its first member (active) or loses its last, from
  /// the shard thread where it happened. It must not call the Hub: post the work elsewhere (a Bus
  /// subscribes upstream of this node only for topics with members).
  using ActivityObserver = std::function<void(std::string_view topic, bool active)>;

  /// Whether a topic this hub does not hold exists elsewhere: on an edge node, in the cluster (RedisBus
  /// keeps the ingest nodes' topics; Bus::attach sets this). A client's subscribe to such a topic
  /// creates it here as a publisher's topic would be. Called on shard threads, outside the hub's lock:
  /// it must be thread-safe, quick, and must not call the Hub.
  using TopicDirectory = std::function<bool(std::string_view topic)>;

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
    std::size_t snapshot_keys = 0;
    std::size_t snapshot_bytes = 0;
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
  /// Throws std::invalid_argument for options that make no sense (Group::check, an invalid name in
  /// `topics`, more `topics` than max_topics).
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

  /// Makes `topic` exist before anything is published to it, so clients may subscribe (config, the
  /// application's rooms). A declared topic is never forgotten to make room; it counts against
  /// max_topics. False when the name is invalid or max_topics topics exist and none is idle.
  bool declare(std::string_view topic);

  /// The topic's last seq (0: unknown topic or nothing published yet).
  std::uint64_t last_seq(std::string_view topic) const;
  std::size_t topic_count() const;
  /// Topics a client's subscribe created that nothing was published to yet (Options::client_topics).
  std::size_t client_topic_count() const;
  /// Topics with at least one member now (topic_count() also counts topics kept for their history).
  std::size_t active_topic_count() const noexcept { return active_topics_.load(std::memory_order_relaxed); }
  std::size_t subscriber_count(std::string_view topic) const;
  std::uint64_t published() const noexcept { return published_.load(std::memory_order_relaxed); }
  std::uint64_t duplicates() const noexcept { return duplicates_.load(std::memory_order_relaxed); }
  /// Bytes held by every topic's history and snapshot (see Options::max_history_bytes).
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
  /// Sets (or clears) the topic directory. Before clients subscribe.
  void set_topic_directory(TopicDirectory directory);

  /// Topic names accepted by subscribe: 1..max_topic_bytes bytes, printable ASCII or UTF-8, no spaces or commas.
  bool valid_topic(std::string_view name) const noexcept;

 private:
  // Sessions join and leave through detail::HubMembers (detail/topic.hpp), on their shard's thread.
  friend struct detail::HubMembers;
  using SubscribeResult = detail::SubscribeResult;
  using Recovery = detail::Recovery;
  using Replay = detail::Replay;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using TopicMap = std::unordered_map<std::string, std::shared_ptr<detail::Topic>, Hash, std::equal_to<>>;
  /// Adds `s` to `topic`'s members on `shard`. `out` receives the topic record the session keeps,
  /// `index` the session's place in the member list (unsubscribe tells who moves).
  /// `requester` is the client asking (the topic's budget when it creates one); nullptr: the application.
  SubscribeResult subscribe(std::string_view topic, std::size_t shard, detail::Member* s, const Recovery& recovery,
                            const detail::Requester* requester, std::shared_ptr<detail::Topic>& out, std::size_t& index,
                            Replay& replay);
  /// Removes `s`, at `index` in the member list; `topic` is the record subscribe() gave. Returns the
  /// member moved into place `index` (it must learn its new place), or nullptr.
  detail::Member* unsubscribe(const std::shared_ptr<detail::Topic>& topic, std::size_t shard, std::size_t index,
                              detail::Member* s, bool envelope, std::uint32_t interval_ms);

  std::shared_ptr<detail::Topic> find(std::string_view topic) const;
  /// Finds or creates (evicting an idle topic when full); nullptr when refused. Hub lock held.
  std::shared_ptr<detail::Topic> find_or_create_locked(std::string_view topic);
  detail::HistoryLimits limits_for(std::string_view topic) const noexcept;
  // The registry's bookkeeping, all O(1) and under the hub's lock (docs/security.md, "Topics").
  std::shared_ptr<detail::Topic> create_locked(std::string_view name, detail::TopicOrigin origin,
                                               const detail::Requester* requester);
  /// A place for one more publisher's topic: forgets the topic idle the longest when full. False: none.
  bool make_room_locked();
  /// A client-created topic becomes a publisher's (something was published to it) or a declared one.
  void adopt_locked(detail::Topic& t, detail::TopicOrigin origin);
  void erase_locked(TopicMap::iterator it);
  void release_client_budget_locked(detail::Topic& t);
  void idle_push_locked(detail::Topic& t) noexcept;
  void idle_unlink_locked(detail::Topic& t) noexcept;

  Runtime& runtime_;
  Options options_;
  mutable std::mutex mutex_;
  TopicMap topics_;
  // Publishers' topics without members, idle the longest first: eviction takes the head (intrusive
  // links in detail::Topic). Declared and client-created topics are never in it.
  detail::Topic* idle_head_ = nullptr;
  detail::Topic* idle_tail_ = nullptr;
  std::size_t client_topics_ = 0;  // of topics_.size(); the others count against max_topics
  struct NetworkHash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& n) const noexcept {
      return std::hash<std::uint64_t>{}(n.first * 0x9E3779B97F4A7C15ull ^ n.second);
    }
  };
  // Existing client-created topics per creator; an entry goes with its last topic.
  std::unordered_map<std::uint64_t, std::uint32_t> created_by_connection_;
  std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, std::uint32_t, NetworkHash> created_by_network_;
  TopicDirectory directory_;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::shared_ptr<std::atomic<std::int64_t>> history_bytes_ = std::make_shared<std::atomic<std::int64_t>>(0);
  std::atomic<std::size_t> active_topics_{0};
  ActivityObserver observer_;
  std::vector<PublishObserver> publish_observers_;
};

}  // namespace fanout

// fanout/hub.hpp — the topic registry and the fan-out.
//
// publish() encodes the message once into a Frame and posts it once to every shard that has members
// of the topic; each shard walks its member list and queues a reference on each session. Nothing is
// copied or allocated per recipient.
//
//   fanout::Hub hub(runtime);
//   hub.publish("trades.BTC-USDT", R"({"px":"64000.5","sz":"0.01"})");
//
// Thread safety: publish(), topic_count(), subscriber_count() from any thread, concurrently.
// subscribe()/unsubscribe() are for sessions, on their shard's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "fanout/frame.hpp"

namespace fanout {

class Runtime;
class Session;
namespace detail {
struct Topic;
}

class Hub {
 public:
  struct Options {
    std::size_t max_topics = 100'000;   // topics with members at once; more subscribes are refused
    std::size_t max_topic_bytes = 256;  // longest topic name
  };

  /// Called under the hub's lock when a topic gets its first member (active) or loses its last, from
  /// the shard thread where it happened. It must not call the Hub: post the work elsewhere (a Bus
  /// subscribes upstream of this node only for topics with members).
  using ActivityObserver = std::function<void(std::string_view topic, bool active)>;

  explicit Hub(Runtime& runtime);
  Hub(Runtime& runtime, Options options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  /// Sends `payload` as one WebSocket message (text by default) to every subscriber of `topic`.
  /// Returns the number of shards it was posted to (0: nobody subscribed, nothing was encoded).
  std::size_t publish(std::string_view topic, std::string_view payload, Opcode op = Opcode::text);
  /// Same, with a frame the caller already encoded (Frame::make).
  std::size_t publish(std::string_view topic, FrameRef frame);

  /// Sets (or clears, with an empty function) the activity observer. Before members exist, or while
  /// the caller knows no subscribe or unsubscribe runs.
  void set_activity_observer(ActivityObserver observer);

  std::size_t topic_count() const;
  std::size_t subscriber_count(std::string_view topic) const;
  std::uint64_t published() const noexcept { return published_.load(std::memory_order_relaxed); }
  /// Topics with at least one member now (topic_count() may also count topics kept without members).
  std::size_t active_topic_count() const noexcept { return active_topics_.load(std::memory_order_relaxed); }
  const Options& options() const noexcept { return options_; }

  /// Topic names accepted by subscribe: 1..max_topic_bytes bytes, printable ASCII or UTF-8, no spaces or commas.
  bool valid_topic(std::string_view name) const noexcept;

  // ---- for sessions, on their shard's thread ----
  enum class SubscribeResult { ok, invalid_topic, too_many_topics };
  /// Adds `s` to `topic`'s members on `shard`. `out` receives the topic record the session keeps,
  /// `index` the session's place in the member list (kept current through set_group_index).
  SubscribeResult subscribe(std::string_view topic, std::size_t shard, Session* s, std::shared_ptr<detail::Topic>& out,
                            std::size_t& index);
  /// Removes `s`; `topic` is the record subscribe() gave.
  void unsubscribe(const std::shared_ptr<detail::Topic>& topic, std::size_t shard, Session* s);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::shared_ptr<detail::Topic> find(std::string_view topic) const;
  std::size_t post(std::shared_ptr<detail::Topic> topic, FrameRef frame);

  Runtime& runtime_;
  Options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<detail::Topic>, Hash, std::equal_to<>> topics_;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::size_t> active_topics_{0};
  ActivityObserver observer_;
};

}  // namespace fanout

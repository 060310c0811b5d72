// fanout/redis_bus.hpp — a Bus over Redis (hiredis), driven by an asio io_context.
//
// Ingest side: every publish is one EVAL of a small script that, atomically in Redis, checks the
// stream's fencing number, assigns the topic's next seq (HINCRBY), appends the message to the
// topic's Redis Stream (XADD MAXLEN ~ history) and PUBLISHes it on the topic's channel. A publish
// from a deposed leader is refused there, and reported through the fenced handler.
//
// Edge side: SUBSCRIBE to a topic's channel when it gets its first local interest, UNSUBSCRIBE when
// it loses its last (or, with subscribe_all, one PSUBSCRIBE and every topic followed). After every (re)subscribe of a
// topic it has delivered before, it reads the topic's stream from the last seq it delivered (XRANGE)
// and holds live messages back meanwhile, so a Redis blip leaves no gap and no duplicate. Messages
// whose fencing number is below the highest seen for their topic are dropped.
//
// Topic registry: fanout:seq is also the cluster's list of topics (the publish script adds a topic
// with its first message, declare_topic() with seq 0), and a topic's first entry there is announced
// on the channel fanout:topics. An edge subscribes to that channel, then reads the hash (HSCAN), so
// it knows every topic the ingest nodes have: knows_topic() answers the hub's topic directory, and a
// client of this edge may join a topic that exists on an ingest node (docs/security.md, "Topics").
//
// Keys, with the default prefix "fanout": fanout:seq (hash topic -> last seq), fanout:s:{topic}
// (stream), fanout:m:{topic} (channel), fanout:topics (channel of new topics), fanout:lease:{stream},
// fanout:fence:{stream} (RedisLease).
//
// Two connections (commands, subscriptions), each reconnecting with backoff on the io_context given;
// no thread of its own, nothing blocking.
//
// Thread safety: publish(), subscribe(), unsubscribe(), stats() from any thread; the other member
// functions before start() or on the io_context's thread. Handlers run on the io_context's thread.
// Destroy it after the io_context stopped running (or on its thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <asio/io_context.hpp>

#include "fanout/export.hpp"
#include "fanout/bus.hpp"

namespace fanout {

class FANOUT_API RedisBus : public Bus {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string prefix = "fanout";                // key and channel prefix
    std::size_t stream_maxlen = 10'000;           // per topic, approximate (XADD MAXLEN ~)
    std::size_t max_pending_publishes = 100'000;  // unanswered publishes; more are dropped and counted
    std::size_t max_held_per_topic = 100'000;     // live messages held back during a catch-up read
    std::size_t catch_up_batch = 1'000;           // entries per XRANGE
    /// One PSUBSCRIBE prefix:m:* instead of per-topic SUBSCRIBE: this node then follows every topic
    /// (delivers all of them, members or not), and on (re)connect reads each topic's last
    /// prefill_messages from its stream, so a freshly started edge can serve `since` at once.
    bool subscribe_all = false;
    std::size_t prefill_messages = 1'000;      // per topic, with subscribe_all; 0: none
    std::size_t max_prefill_topics = 10'000;   // topics prefilled per (re)connect
    std::size_t max_known_topics = 1'000'000;  // names of the cluster's topics kept (knows_topic); more are ignored
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(2);
    std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(100);
    std::chrono::milliseconds backoff_max = std::chrono::seconds(2);
  };

  struct Stats {
    std::uint64_t published = 0;        // accepted by Redis
    std::uint64_t publish_dropped = 0;  // not sent: Redis down or too many pending
    std::uint64_t publish_failed = 0;   // error reply or connection lost before the reply
    std::uint64_t publish_fenced = 0;   // refused: the fencing number moved on
    std::uint64_t delivered = 0;        // handed to the handler
    std::uint64_t duplicates = 0;       // seq already delivered
    std::uint64_t fenced = 0;           // received from a deposed leader, dropped
    std::uint64_t recovered = 0;        // delivered from a stream read (catch-up)
    std::uint64_t gaps = 0;             // seq jumps the stream could not fill (trimmed)
    std::uint64_t malformed = 0;        // not a bus message
    std::uint64_t reconnects = 0;       // subscription connection re-established
    std::uint64_t topics = 0;           // topics subscribed now
    std::uint64_t known_topics = 0;     // topics of the cluster this node knows (registry)
  };

  /// Connection state changes and notable events, for logs.
  using LogHandler = std::function<void(std::string_view line)>;

  RedisBus(asio::io_context& io, Options options);
  ~RedisBus() override;
  RedisBus(const RedisBus&) = delete;
  RedisBus& operator=(const RedisBus&) = delete;

  void start();
  void stop();

  void publish(const BusMessage& m, std::string_view stream) override;
  void subscribe(std::string_view topic) override;
  void unsubscribe(std::string_view topic) override;
  void set_handler(Handler handler) override;
  void set_fenced_handler(FencedHandler handler) override;
  void set_resume_point(ResumePoint resume_point) override;
  bool knows_topic(std::string_view topic) const override;
  void declare_topic(std::string_view topic) override;
  void set_log_handler(LogHandler handler);

  Stats stats() const;
  /// Both connections are up.
  bool connected() const noexcept;
  const Options& options() const noexcept { return options_; }

 private:
  struct Impl;
  Options options_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fanout

#include "fanout/redis_bus.hpp"

#include <hiredis/hiredis.h>

#include <asio/post.hpp>
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <deque>
#include <random>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "fanout/detail/redis_connection.hpp"

namespace fanout {
namespace {

// Runs atomically in Redis. KEYS: fence, seq hash, stream. ARGV: fence, topic, key, payload, maxlen,
// channel, op, registry channel. Returns the seq, or -1 when the fencing number is not the stream's
// current one. The message format is the one decode_bus_message() reads (fanout/bus_message.hpp).
// A topic's first message announces the topic to the edges (the seq hash is the registry).
constexpr std::string_view k_publish_script = R"lua(
if ARGV[1] ~= '0' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local seq = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
local m = 'FO1 ' .. seq .. ' ' .. ARGV[1] .. ' ' .. ARGV[7] .. ' ' .. #ARGV[2] .. ' ' .. #ARGV[3] .. '\n'
  .. ARGV[2] .. ARGV[3] .. ARGV[4]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'm', m)
if seq == 1 then redis.call('PUBLISH', ARGV[8], ARGV[2]) end
redis.call('PUBLISH', ARGV[6], m)
return seq
)lua";

// A declared topic: in the registry with seq 0 (its first message gets 1), announced once.
// KEYS: seq hash. ARGV: topic, registry channel.
constexpr std::string_view k_declare_script = R"lua(
if redis.call('HSETNX', KEYS[1], ARGV[1], 0) == 1 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return 1
)lua";

// A random id stored once per Redis dataset: when it changes, Redis lost its data (seqs restart).
constexpr std::string_view k_epoch_script = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
)lua";

std::string_view str(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
             ? std::string_view(r->str, r->len)
             : std::string_view{};
}

struct Counters {
  std::atomic<std::uint64_t> published{0}, publish_dropped{0}, publish_failed{0}, publish_fenced{0}, delivered{0},
      duplicates{0}, fenced{0}, recovered{0}, gaps{0}, malformed{0}, reconnects{0}, topics{0}, known_topics{0};
};
void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

}  // namespace

struct RedisBus::Impl : std::enable_shared_from_this<Impl> {
  enum class Sub { none, subscribing, subscribed, unsubscribing };
  struct Topic {
    int refs = 0;
    Sub sub = Sub::none;
    std::uint64_t last_seq = 0;   // last delivered; 0: nothing yet, the first live message sets it
    std::uint64_t max_fence = 0;  // highest fencing number seen
    bool catching_up = false;     // reading the stream; live messages are held
    bool read_in_flight = false;
    bool read_again = false;  // held messages were dropped: read once more before going live
    bool prefilling = false;  // counted in prefill_pending until its first read completes
    bool resuming = false;    // continuing from the resume point: give up if more than a batch was missed
    std::deque<std::string> held;
  };
  struct Publication {
    std::string topic, key, payload, stream;
    std::uint64_t fence;
    Opcode op;
  };

  Impl(asio::io_context& io, const Options& o)
      : io(io),
        options(o),
        commands(io, connection_options("redis commands"),
                 [this](bool up, std::string_view why) { on_commands(up, why); }),
        subscriptions(
            io, connection_options("redis subscriptions"),
            [this](bool up, std::string_view why) { on_subscriptions(up, why); },
            [this](redisReply* r) { on_push(r); }) {
    std::random_device rd;
    epoch_token = fmt::format("{:016x}{:016x}", (std::uint64_t(rd()) << 32) | rd(), (std::uint64_t(rd()) << 32) | rd());
  }

  detail::RedisConnection::Options connection_options(std::string name) const {
    return {.host = options.host,
            .port = options.port,
            .connect_timeout = options.connect_timeout,
            .backoff_initial = options.backoff_initial,
            .backoff_max = options.backoff_max,
            .name = std::move(name)};
  }

  std::string channel(std::string_view topic) const { return fmt::format("{}:m:{}", options.prefix, topic); }
  std::string registry_channel() const { return options.prefix + ":topics"; }
  std::string stream_key(std::string_view topic) const { return fmt::format("{}:s:{}", options.prefix, topic); }
  std::string_view topic_of_channel(std::string_view ch) const {
    const std::size_t n = options.prefix.size() + 3;
    return ch.size() > n && ch.starts_with(options.prefix) && ch.substr(options.prefix.size(), 3) == ":m:"
               ? ch.substr(n)
               : std::string_view{};
  }
  void log(std::string_view line) {
    if (on_log) on_log(line);
  }

  // ---- connections

  void on_commands(bool up, std::string_view why) {
    log(up ? "redis commands connection up" : fmt::format("redis commands connection down: {}", why));
    publish_sha.clear();
    if (!up) {
      for (auto& [name, t] : topics) t.read_in_flight = false;
      return;
    }
    load_publish_script();
    check_epoch();
    if (registry_scan_pending) scan_registry("0");
    for (auto& t : std::exchange(declared_pending, {})) declare(t);
  }

  // Publishes use EVALSHA once the script is loaded (not sending and hashing it per message); until
  // the answer, EVAL. Both run in order on the one connection, so seq order is publish order.
  void load_publish_script() {
    std::array<std::string_view, 3> args{"SCRIPT", "LOAD", k_publish_script};
    commands.command(args, [this](redisReply* r) {
      if (r && r->type == REDIS_REPLY_STRING) publish_sha = str(r);
    });
  }

  void on_subscriptions(bool up, std::string_view why) {
    if (!up) {
      log(fmt::format("redis subscriptions connection down: {}", why));
      // hiredis forgot every subscription; members keep being served from what they have.
      for (auto it = topics.begin(); it != topics.end();) {
        it->second.sub = Sub::none;
        auto next = std::next(it);
        if (it->second.refs == 0 && !options.subscribe_all) erase(it);
        it = next;
      }
      return;
    }
    if (ever_subscribed) bump(counters.reconnects);
    ever_subscribed = true;
    if (handler) {  // an edge: learn the cluster's topics (announced, then read: nothing falls between)
      const std::string ch = registry_channel();
      std::array<std::string_view, 2> args{"SUBSCRIBE", ch};
      subscriptions.push_command(args);
    }
    log(fmt::format("redis subscriptions connection up ({} topics to subscribe)", topics.size()));
    if (options.subscribe_all) {
      const std::string pattern = options.prefix + ":m:*";
      std::array<std::string_view, 2> args{"PSUBSCRIBE", pattern};
      subscriptions.push_command(args);
      // Catch up every topic once the pattern is confirmed (on_push).
      return;
    }
    for (auto& [name, t] : topics)
      if (t.refs > 0) send_subscribe(name, t);
  }

  void check_epoch() {
    const std::string key = options.prefix + ":epoch";
    std::array<std::string_view, 5> args{"EVAL", k_epoch_script, "1", key, epoch_token};
    commands.command(args, [this](redisReply* r) {
      const std::string_view e = str(r);
      if (!r || r->type != REDIS_REPLY_STRING) return;
      if (!epoch.empty() && e != epoch) {
        log(fmt::format("redis lost its data (epoch {} -> {}): seqs start over", epoch, e));
        for (auto& [name, t] : topics) {
          t.last_seq = 0;
          t.max_fence = 0;
        }
      }
      epoch = e;
      // Reads that waited for this connection.
      for (auto& [name, t] : topics)
        if (t.catching_up && !t.read_in_flight) read_stream(name, t);
    });
  }

  // ---- edge: subscriptions

  void send_subscribe(const std::string& name, Topic& t) {
    if (options.subscribe_all || t.sub != Sub::none || !subscriptions.connected()) return;
    const std::string ch = channel(name);
    std::array<std::string_view, 2> args{"SUBSCRIBE", ch};
    if (subscriptions.push_command(args)) t.sub = Sub::subscribing;
  }

  void add_interest(const std::string& name) {
    auto [it, fresh] = topics.try_emplace(name);
    Topic& t = it->second;
    if (++t.refs != 1) return;
    if (fresh) bump(counters.topics);
    if (fresh && resume_point) {
      t.last_seq = resume_point(name);
      t.resuming = t.last_seq != 0;
    }
    if (options.subscribe_all) {
      if (fresh && subscriptions.connected()) t.sub = Sub::subscribed;
      return;
    }
    // While an UNSUBSCRIBE is in flight, hiredis would drop the new subscription's callback when the
    // unsubscribe confirmation arrives: subscribe again only after it (on_push).
    if (t.sub == Sub::none) send_subscribe(name, t);
  }

  void drop_interest(const std::string& name) {
    auto it = topics.find(name);
    if (it == topics.end() || it->second.refs == 0) return;
    Topic& t = it->second;
    if (--t.refs > 0) return;
    if (!options.subscribe_all && t.sub == Sub::subscribed) {
      const std::string ch = channel(name);
      std::array<std::string_view, 2> args{"UNSUBSCRIBE", ch};
      if (subscriptions.push_command(args)) {
        t.sub = Sub::unsubscribing;
        return;
      }
    }
    if (t.sub == Sub::none && !options.subscribe_all) erase(it);  // following all: keep its position
  }

  void erase(std::unordered_map<std::string, Topic>::iterator it) {
    topics.erase(it);
    counters.topics.fetch_sub(1, std::memory_order_relaxed);
  }

  void on_push(redisReply* r) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const std::string_view kind = str(r->element[0]);
    if ((kind == "message" || kind == "subscribe") && str(r->element[1]) == registry_channel()) {
      if (kind == "message")
        add_known(str(r->element[2]));
      else
        scan_registry("0");
      return;
    }
    if (kind == "message") {
      on_live(topic_of_channel(str(r->element[1])), str(r->element[2]));
    } else if (kind == "pmessage" && r->elements >= 4) {
      on_live(topic_of_channel(str(r->element[2])), str(r->element[3]));
    } else if (kind == "subscribe") {
      auto it = topics.find(std::string(topic_of_channel(str(r->element[1]))));
      if (it == topics.end()) return;
      it->second.sub = Sub::subscribed;
      if (it->second.refs == 0) {
        drop_interest_confirmed(it);
        return;
      }
      start_catch_up(it->first, it->second);
    } else if (kind == "psubscribe") {
      for (auto& [name, t] : topics) {
        t.sub = Sub::subscribed;
        start_catch_up(name, t);
      }
      prefill();
    } else if (kind == "unsubscribe") {
      auto it = topics.find(std::string(topic_of_channel(str(r->element[1]))));
      if (it == topics.end()) return;
      it->second.sub = Sub::none;
      if (it->second.refs > 0)
        send_subscribe(it->first, it->second);  // interest came back meanwhile
      else
        erase(it);
    }
  }

  // Following every topic: each topic this node has not seen gets its last prefill_messages read from
  // its stream, so the hub has history for `since` before any client here asked for the topic.
  void prefill() {
    if (options.prefill_messages == 0 || !commands.connected()) return;
    const std::string key = options.prefix + ":seq";
    std::array<std::string_view, 2> args{"HGETALL", key};
    commands.command(args, [this](redisReply* r) {
      if (!r || r->type != REDIS_REPLY_ARRAY) return;
      std::size_t n = 0;
      prefill_started = true;
      for (std::size_t i = 0; i + 1 < r->elements && n < options.max_prefill_topics; i += 2, ++n) {
        const std::string name(str(r->element[i]));
        std::uint64_t last = 0;
        const std::string_view v = str(r->element[i + 1]);
        std::from_chars(v.data(), v.data() + v.size(), last);
        auto [it, fresh] = topics.try_emplace(name);
        if (!fresh && (it->second.last_seq != 0 || it->second.catching_up)) continue;
        if (fresh) bump(counters.topics);
        Topic& t = it->second;
        t.sub = Sub::subscribed;
        t.last_seq = last > options.prefill_messages ? last - options.prefill_messages : 0;
        t.catching_up = true;
        if (!t.prefilling) ++prefill_pending;
        t.prefilling = true;
        if (!t.read_in_flight) read_stream(name, t);
      }
      prefill_done();
    });
  }

  // A subscribe confirmed for a topic whose interest left meanwhile: unsubscribe it now.
  void drop_interest_confirmed(std::unordered_map<std::string, Topic>::iterator it) {
    const std::string ch = channel(it->first);
    std::array<std::string_view, 2> args{"UNSUBSCRIBE", ch};
    if (subscriptions.push_command(args))
      it->second.sub = Sub::unsubscribing;
    else
      erase(it);
  }

  // ---- edge: the cluster's topics (the registry)

  // Reads the seq hash in steps (HSCAN), so a registry of many topics never blocks Redis for long.
  void scan_registry(const std::string& cursor) {
    registry_scan_pending = !commands.connected();
    if (registry_scan_pending) return;  // on_commands resumes it
    const std::string key = options.prefix + ":seq";
    std::array<std::string_view, 5> args{"HSCAN", key, cursor, "COUNT", "1000"};
    const bool sent = commands.command(args, [this](redisReply* r) {
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
        registry_scan_pending = true;  // again when the commands connection is back
        return;
      }
      const redisReply* fields = r->element[1];
      for (std::size_t i = 0; i + 1 < fields->elements; i += 2) add_known(str(fields->element[i]));
      const std::string next(str(r->element[0]));
      if (next != "0" && !next.empty())
        scan_registry(next);
      else
        log(fmt::format("redis: {} topics known in the cluster", counters.known_topics.load()));
    });
    if (!sent) registry_scan_pending = true;
  }

  void add_known(std::string_view topic) {
    if (topic.empty()) return;
    std::lock_guard lock(known_mutex);
    if (known.size() >= options.max_known_topics) {
      if (!known.contains(topic) && !known_full_logged) {
        known_full_logged = true;
        log(fmt::format("redis: more than {} topics in the cluster: later ones are not known here (max_known_topics)",
                        options.max_known_topics));
      }
      return;
    }
    if (known.emplace(topic).second) bump(counters.known_topics);
  }

  bool knows(std::string_view topic) const {
    std::lock_guard lock(known_mutex);
    return known.contains(topic);
  }

  void declare(const std::string& topic) {
    const std::string key = options.prefix + ":seq";
    const std::string ch = registry_channel();
    std::array<std::string_view, 6> args{"EVAL", k_declare_script, "1", key, topic, ch};
    if (!commands.command(args, [](redisReply*) {})) declared_pending.push_back(topic);
  }

  // ---- edge: delivery

  void on_live(std::string_view topic, std::string_view wire) {
    auto it = topics.find(std::string(topic));
    if (options.subscribe_all && it == topics.end() && !topic.empty()) {  // following every topic
      it = topics.try_emplace(std::string(topic)).first;
      it->second.sub = Sub::subscribed;
      bump(counters.topics);
    }
    if (it == topics.end() || (it->second.refs == 0 && !options.subscribe_all)) return;
    Topic& t = it->second;
    BusMessage m;
    if (!decode_bus_message(wire, m) || m.topic != topic) {
      bump(counters.malformed);
      return;
    }
    if (m.fence < t.max_fence) {  // a deposed leader's message
      bump(counters.fenced);
      return;
    }
    t.max_fence = m.fence;
    if (t.catching_up) {
      hold(t, wire);
      return;
    }
    if (t.last_seq != 0 && m.seq > t.last_seq + 1) {
      // Missed messages (e.g. published while we were resubscribing): read them from the stream.
      hold(t, wire);
      start_catch_up(it->first, t);
      return;
    }
    deliver(t, m);
  }

  void hold(Topic& t, std::string_view wire) {
    if (t.held.size() >= options.max_held_per_topic) {
      t.held.clear();  // all of them are in the stream: read it once more instead
      t.read_again = true;
    }
    t.held.emplace_back(wire);
  }

  bool deliver(Topic& t, const BusMessage& m) {
    if (m.seq <= t.last_seq) {
      bump(counters.duplicates);
      return false;
    }
    t.last_seq = m.seq;
    bump(counters.delivered);
    if (handler) handler(m);
    return true;
  }

  void start_catch_up(const std::string& name, Topic& t) {
    if (t.last_seq == 0) {  // nothing delivered yet: start live
      t.catching_up = false;
      release_held(name, t);
      return;
    }
    t.catching_up = true;
    if (!t.read_in_flight) read_stream(name, t);
  }

  void read_stream(const std::string& name, Topic& t) {
    if (!commands.connected()) return;  // check_epoch() resumes it
    const std::string key = stream_key(name);
    const std::string from = fmt::format("{}-0", t.last_seq + 1);
    const std::string count = std::to_string(options.catch_up_batch);
    std::array<std::string_view, 6> args{"XRANGE", key, from, "+", "COUNT", count};
    t.read_again = false;
    t.read_in_flight = commands.command(args, [this, name](redisReply* r) { on_stream(name, r); });
  }

  void on_stream(const std::string& name, redisReply* r) {
    auto it = topics.find(name);
    if (it == topics.end()) return;
    Topic& t = it->second;
    t.read_in_flight = false;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
      if (r) log(fmt::format("redis: reading {} failed: {}", stream_key(name), str(r)));
      return;  // retried when the commands connection is back (check_epoch)
    }
    if (t.resuming && r->elements >= options.catch_up_batch) {
      // Idle here for long: start live rather than replaying a long past to the new members.
      log(fmt::format("redis: {} resumes live: more than {} messages since seq {}", name, options.catch_up_batch,
                      t.last_seq));
      t.resuming = false;
      t.last_seq = 0;
      t.catching_up = false;
      release_held(name, t);
      return;
    }
    for (std::size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY ||
          e->element[1]->elements < 2) {
        bump(counters.malformed);
        continue;
      }
      BusMessage m;
      if (!decode_bus_message(str(e->element[1]->element[1]), m)) {
        bump(counters.malformed);
        continue;
      }
      if (m.seq > t.last_seq + 1 && t.last_seq != 0) {
        bump(counters.gaps);
        log(fmt::format("redis: {} seq {}..{} are no longer in the stream", name, t.last_seq + 1, m.seq - 1));
      }
      t.max_fence = std::max(t.max_fence, m.fence);
      if (deliver(t, m)) bump(counters.recovered);
    }
    t.resuming = false;
    if (r->elements >= options.catch_up_batch || t.read_again) {
      read_stream(name, t);
      return;
    }
    t.catching_up = false;
    if (t.prefilling) {
      t.prefilling = false;
      --prefill_pending;
      prefill_done();
    }
    release_held(name, t);
  }

  void prefill_done() {
    if (!prefill_started || prefill_pending != 0) return;
    prefill_started = false;
    log(fmt::format("redis: prefilled {} topics (up to {} messages each)", topics.size(), options.prefill_messages));
  }

  // Live messages that arrived during the read, in order; what the stream gave already is skipped.
  void release_held(const std::string& name, Topic& t) {
    while (!t.held.empty()) {
      std::string wire = std::move(t.held.front());
      t.held.pop_front();
      BusMessage m;
      if (!decode_bus_message(wire, m)) continue;
      if (m.seq <= t.last_seq) {
        bump(counters.duplicates);
        continue;
      }
      if (t.last_seq != 0 && m.seq > t.last_seq + 1) {  // still missing some: they must be in the stream by now
        t.held.emplace_front(std::move(wire));
        t.catching_up = true;
        if (!t.read_in_flight) read_stream(name, t);
        return;
      }
      deliver(t, m);
    }
  }

  // ---- ingest

  void publish(Publication p) {
    if (!commands.connected() || commands.pending() >= options.max_pending_publishes) {
      bump(counters.publish_dropped);
      return;
    }
    const std::string fence_key = fmt::format("{}:fence:{}", options.prefix, p.stream);
    const std::string seq_key = options.prefix + ":seq";
    const std::string skey = stream_key(p.topic);
    const std::string fence = std::to_string(p.fence);
    const std::string maxlen = std::to_string(options.stream_maxlen);
    const std::string ch = channel(p.topic);
    const bool sha = !publish_sha.empty();
    const std::string registry = registry_channel();
    std::array<std::string_view, 14> args{sha ? "EVALSHA" : "EVAL",
                                          sha ? std::string_view(publish_sha) : k_publish_script,
                                          "3",
                                          fence_key,
                                          seq_key,
                                          skey,
                                          fence,
                                          p.topic,
                                          p.key,
                                          p.payload,
                                          maxlen,
                                          ch,
                                          p.op == Opcode::binary ? "b" : "t",
                                          registry};
    const bool sent = commands.command(args, [this, stream = std::move(p.stream), f = p.fence](redisReply* r) {
      if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        bump(counters.published);
      } else if (r && r->type == REDIS_REPLY_INTEGER) {
        bump(counters.publish_fenced);
        if (on_fenced) on_fenced(stream, f);
      } else {
        bump(counters.publish_failed);
        if (r && failure_logs++ < 10) log(fmt::format("redis: publish failed: {}", str(r)));
        if (r && str(r).starts_with("NOSCRIPT") && !publish_sha.empty()) {  // SCRIPT FLUSH: load it again
          publish_sha.clear();
          load_publish_script();
        }
      }
    });
    if (!sent) bump(counters.publish_dropped);
  }

  asio::io_context& io;
  Options options;
  detail::RedisConnection commands;
  detail::RedisConnection subscriptions;
  std::unordered_map<std::string, Topic> topics;
  Handler handler;
  FencedHandler on_fenced;
  ResumePoint resume_point;
  LogHandler on_log;
  Counters counters;
  std::string epoch, epoch_token;
  std::string publish_sha;
  std::size_t prefill_pending = 0;
  // The cluster's topics: written on the io_context's thread, read by knows_topic() on any thread.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex known_mutex;
  std::unordered_set<std::string, Hash, std::equal_to<>> known;
  bool known_full_logged = false;
  bool registry_scan_pending = false;
  std::vector<std::string> declared_pending;  // declared while the commands connection was down
  bool prefill_started = false;               // of k_publish_script, once loaded on the current connection
  bool ever_subscribed = false;
  std::uint64_t failure_logs = 0;
};

RedisBus::RedisBus(asio::io_context& io, Options options)
    : options_(std::move(options)), impl_(std::make_shared<Impl>(io, options_)) {}

RedisBus::~RedisBus() = default;

void RedisBus::start() {
  impl_->commands.start();
  impl_->subscriptions.start();
}

void RedisBus::stop() {
  impl_->commands.stop();
  impl_->subscriptions.stop();
}

void RedisBus::publish(const BusMessage& m, std::string_view stream) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_),
                         p = Impl::Publication{std::string(m.topic), std::string(m.key), std::string(m.payload),
                                               std::string(stream), m.fence, m.op}]() mutable {
    if (auto impl = w.lock()) impl->publish(std::move(p));
  });
}

void RedisBus::subscribe(std::string_view topic) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), t = std::string(topic)] {
    if (auto impl = w.lock()) impl->add_interest(t);
  });
}

void RedisBus::unsubscribe(std::string_view topic) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), t = std::string(topic)] {
    if (auto impl = w.lock()) impl->drop_interest(t);
  });
}

void RedisBus::set_handler(Handler handler) { impl_->handler = std::move(handler); }
void RedisBus::set_fenced_handler(FencedHandler handler) { impl_->on_fenced = std::move(handler); }
void RedisBus::set_resume_point(ResumePoint resume_point) { impl_->resume_point = std::move(resume_point); }
void RedisBus::set_log_handler(LogHandler handler) { impl_->on_log = std::move(handler); }

bool RedisBus::knows_topic(std::string_view topic) const { return impl_->knows(topic); }

void RedisBus::declare_topic(std::string_view topic) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), t = std::string(topic)] {
    if (auto impl = w.lock()) impl->declare(t);
  });
}

bool RedisBus::connected() const noexcept { return impl_->commands.connected() && impl_->subscriptions.connected(); }

RedisBus::Stats RedisBus::stats() const {
  const Counters& c = impl_->counters;
  auto v = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {v(c.published),  v(c.publish_dropped), v(c.publish_failed), v(c.publish_fenced), v(c.delivered),
          v(c.duplicates), v(c.fenced),          v(c.recovered),      v(c.gaps),           v(c.malformed),
          v(c.reconnects), v(c.topics),          v(c.known_topics)};
}

}  // namespace fanout

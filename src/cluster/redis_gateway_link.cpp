#include "fanout/redis_gateway_link.hpp"

#include <hiredis/hiredis.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>
#include <simdjson.h>

#include <array>
#include <atomic>
#include <charconv>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fanout/api_commands.hpp"
#include "fanout/detail/presence_cache.hpp"
#include "fanout/detail/redis_connection.hpp"

namespace fanout {
namespace {

// ---- Lua scripts (run atomically in Redis; the server's clock, so nodes' clocks need not agree)

// This node's users, written whole (on every (re)connect of the writes connection) and announced.
// Returns 2 when the node's name had a beat younger than the ttl: on this process's first
// registration, another live node has the same name. KEYS: nodes zset, this node's set. ARGV: node,
// ttl ms, presence channel, users...
constexpr std::string_view k_register_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
for i = 4, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PUBLISH', ARGV[3], 'sync ' .. ARGV[1])
if last and now - tonumber(last) < tonumber(ARGV[2]) then return 2 end
return 1
)lua";

// One user's first connection on this node (+) or its last gone (-).
// KEYS: this node's set. ARGV: + or -, user, ttl ms, presence channel, node.
constexpr std::string_view k_delta_script = R"lua(
if ARGV[1] == '+' then
  redis.call('SADD', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('SREM', KEYS[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[1] .. ' ' .. ARGV[5] .. ' ' .. ARGV[2])
return 1
)lua";

// Every ttl/3: this node is alive; nodes silent for a ttl are removed (and announced dead); the
// command stream is trimmed (business code may XADD without MAXLEN). Returns 1 when this node was
// not in the zset (first beat, or removed as dead meanwhile): it then registers again.
// KEYS: nodes zset. ARGV: node, ttl ms, set prefix, presence channel, command stream, maxlen.
constexpr std::string_view k_heartbeat_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fresh = redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', ARGV[3] .. ARGV[1], ARGV[2])
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))) do
  redis.call('ZREM', KEYS[1], n)
  redis.call('DEL', ARGV[3] .. n)
  redis.call('PUBLISH', ARGV[4], 'dead ' .. n)
end
if ARGV[6] ~= '0' then redis.call('XTRIM', ARGV[5], 'MAXLEN', '~', ARGV[6]) end
return fresh
)lua";

// Every node and its users, in one atomic read. KEYS: nodes zset. ARGV: set prefix.
constexpr std::string_view k_snapshot_script = R"lua(
local out = {}
for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = n
  out[#out + 1] = redis.call('SMEMBERS', ARGV[1] .. n)
end
return out
)lua";

// This node leaves (stop()): its users go offline everywhere now. KEYS: nodes zset, this node's set.
// ARGV: node, presence channel.
constexpr std::string_view k_leave_script = R"lua(
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], 'dead ' .. ARGV[1])
return 1
)lua";

std::string_view str(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
             ? std::string_view(r->str, r->len)
             : std::string_view{};
}

struct Counters {
  std::atomic<std::uint64_t> received{0}, executed{0}, failed{0}, malformed{0}, other_node{0}, expired{0}, forwarded{0},
      forward_dropped{0}, resyncs{0}, reconnects{0};
};
void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

// ---- commands: where they act

bool acts_on_every_node(std::string_view cmd) {
  static constexpr std::array<std::string_view, 14> k_names{
      "publish",    "broadcast", "send_to_all", "send_to_user", "send_to_client", "close_client", "close_user",
      "disconnect", "join",      "leave",       "bind_user",    "unbind_user",    "bind",         "unbind"};
  for (auto n : k_names)
    if (n == cmd) return true;
  return false;
}

// The node part of a client id ("n2-1f" -> "n2"); node names have no '-'.
std::string_view node_of_client(std::string_view client_id) {
  const auto dash = client_id.find('-');
  return dash == std::string_view::npos ? std::string_view{} : client_id.substr(0, dash);
}

RedisGatewayLink::Scope scope_of(simdjson::dom::element e, std::string_view node) {
  using Scope = RedisGatewayLink::Scope;
  simdjson::dom::object obj;
  std::string_view cmd;
  if (e.get_object().get(obj) || obj["cmd"].get_string().get(cmd)) return Scope::invalid;
  std::string_view client, user;
  const bool has_client = !obj["client"].get_string().get(client) || !obj["client_id"].get_string().get(client);
  // A disconnect of a client and a user closes the user's connections everywhere.
  const bool for_user_too = cmd == "disconnect" && !obj["user"].get_string().get(user);
  if (has_client && !for_user_too) return node_of_client(client) == node ? Scope::local : Scope::remote;
  return acts_on_every_node(cmd) ? Scope::cluster : Scope::local;
}

// An executor's answer that reports an error: {"error":...} ({"ok":false} is a join that found
// nobody, not an error).
bool is_error_answer(std::string_view answer) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(answer.data(), answer.size(), true).get_object().get(obj)) return true;
  simdjson::dom::element error;
  return !obj["error"].get(error);
}

}  // namespace

namespace {
// The commands of a batch: a JSON array, or {"cmd":"batch","commands":[...]} / {"commands":[...]}
// (the HTTP API's form). False for a single command.
bool batch_of(simdjson::dom::element doc, simdjson::dom::array& out) {
  if (!doc.get_array().get(out)) return true;
  simdjson::dom::object obj;
  return !doc.get_object().get(obj) && !obj["commands"].get_array().get(out);
}
}  // namespace

RedisGatewayLink::Scope RedisGatewayLink::scope(std::string_view command_json, std::string_view node) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(command_json.data(), command_json.size(), true).get(doc)) return Scope::invalid;
  simdjson::dom::array batch;
  if (!batch_of(doc, batch)) return scope_of(doc, node);
  // A batch acts where its widest command acts.
  Scope widest = Scope::local;
  bool remote = false;
  for (auto e : batch) {
    const Scope s = scope_of(e, node);
    if (s == Scope::invalid) return Scope::invalid;
    if (s == Scope::cluster) widest = Scope::cluster;
    if (s == Scope::remote) remote = true;
  }
  return widest == Scope::cluster || (remote && batch.size() > 1) ? Scope::cluster
         : remote                                                 ? Scope::remote
                                                                  : Scope::local;
}

struct RedisGatewayLink::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, const Options& o)
      : io(io),
        options(o),
        cache(o.node, o.max_presence_users),
        writes(io, connection_options("redis gateway writes"),
               [this](bool up, std::string_view why) { on_writes(up, why); }),
        subscriptions(
            io, connection_options("redis gateway subscriptions"),
            [this](bool up, std::string_view why) { on_subscriptions(up, why); },
            [this](redisReply* r) { on_push(r); }),
        reader(io, connection_options("redis gateway commands"),
               [this](bool up, std::string_view why) { on_reader(up, why); }),
        heartbeat(io),
        cmd_key(o.prefix + ":cmd"),
        presence_channel(o.prefix + ":presence"),
        nodes_key(o.prefix + ":nodes"),
        set_prefix(o.prefix + ":presence:"),
        own_set(set_prefix + o.node) {}

  detail::RedisConnection::Options connection_options(std::string name) const {
    return {.host = options.host,
            .port = options.port,
            .connect_timeout = options.connect_timeout,
            .backoff_initial = options.backoff_initial,
            .backoff_max = options.backoff_max,
            .name = std::move(name)};
  }

  void log(std::string_view line) {
    if (on_log) on_log(line);
  }

  // ---- presence: this node's side

  void on_writes(bool up, std::string_view why) {
    log(up ? "redis gateway: writes connection up" : fmt::format("redis gateway: writes connection down: {}", why));
    if (!up) return;
    register_node();
    if (resync_pending) resync();
    beat();
  }

  void register_node() {
    const std::string ttl = std::to_string(options.presence_ttl.count());
    std::vector<std::string> users = cache.local_users();
    std::vector<std::string_view> args{"EVAL",  k_register_script, "2", nodes_key,
                                       own_set, options.node,      ttl, presence_channel};
    args.insert(args.end(), users.begin(), users.end());
    writes.command(args, [this, n = users.size()](redisReply* r) {
      if (r && r->type == REDIS_REPLY_ERROR) log(fmt::format("redis gateway: register failed: {}", str(r)));
      if (!r || r->type != REDIS_REPLY_INTEGER) return;
      log(fmt::format("redis gateway: node {} registered with {} users", options.node, n));
      if (r->integer == 2 && !std::exchange(registered, true))
        log(
            fmt::format("redis gateway: WARNING: node name {} beat less than {} ms ago: another live node has "
                        "this name (or this node's previous run): client ids and presence collide; give each "
                        "node its own [gateway] node",
                        options.node, options.presence_ttl.count()));
      registered = true;
    });
  }

  void local_user(const std::string& user, bool online) {
    if (!cache.set_local(user, online)) return;
    const std::string ttl = std::to_string(options.presence_ttl.count());
    std::array<std::string_view, 9> args{"EVAL", k_delta_script,   "1",         own_set, online ? "+" : "-", user,
                                         ttl,    presence_channel, options.node};
    // Not sent while Redis is away: register_node() writes the whole set when it is back.
    writes.command(args, [](redisReply*) {});
  }

  void beat() {
    heartbeat.cancel();
    if (stopping) return;
    if (writes.connected()) {
      const std::string ttl = std::to_string(options.presence_ttl.count());
      const std::string maxlen = std::to_string(options.commands ? options.command_stream_maxlen : 0);
      std::array<std::string_view, 10> args{"EVAL",     k_heartbeat_script, "1",     nodes_key, options.node, ttl,
                                            set_prefix, presence_channel,   cmd_key, maxlen};
      writes.command(args, [this](redisReply* r) {
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1 && !stopping) {
          log(fmt::format("redis gateway: node {} was not registered (presence lost): registering again",
                          options.node));
          register_node();
        } else if (r && r->type == REDIS_REPLY_ERROR && failure_logs++ < 10) {
          log(fmt::format("redis gateway: heartbeat failed: {}", str(r)));
        }
      });
    }
    heartbeat.expires_after(std::max(std::chrono::milliseconds(10), options.presence_ttl / 3));
    heartbeat.async_wait([w = weak_from_this()](const asio::error_code& ec) {
      if (auto self = w.lock(); self && !ec) self->beat();
    });
  }

  // ---- presence: the other nodes

  void resync() {
    if (resync_in_flight) {
      resync_again = true;
      return;
    }
    resync_pending = !writes.connected();
    if (resync_pending) return;  // on_writes reads when the connection is back
    cache.begin_resync();
    std::array<std::string_view, 5> args{"EVAL", k_snapshot_script, "1", nodes_key, set_prefix};
    resync_in_flight = writes.command(args, [this](redisReply* r) { on_snapshot(r); });
    if (!resync_in_flight) {
      cache.abort_resync();
      resync_pending = true;
    }
  }

  void on_snapshot(redisReply* r) {
    resync_in_flight = false;
    std::unordered_map<std::string, std::vector<std::string>> nodes;
    const bool good = r && r->type == REDIS_REPLY_ARRAY;
    if (good) {
      for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
        auto& users = nodes[std::string(str(r->element[i]))];
        const redisReply* set = r->element[i + 1];
        if (set->type != REDIS_REPLY_ARRAY) continue;
        users.reserve(set->elements);
        for (std::size_t j = 0; j < set->elements; ++j) users.emplace_back(str(set->element[j]));
      }
    } else {
      if (r) log(fmt::format("redis gateway: presence read failed: {}", str(r)));
      cache.abort_resync();  // keep what is known; read again when the connection is back
      resync_pending = true;
      resync_again = false;
      return;
    }
    bump(counters.resyncs);
    const bool complete = cache.end_resync(std::move(nodes));
    if (!complete || std::exchange(resync_again, false)) resync();
  }

  void on_presence(std::string_view msg) {
    // "+ node user", "- node user", "sync node", "dead node"
    const auto sp = msg.find(' ');
    if (sp == std::string_view::npos) return;
    const std::string_view kind = msg.substr(0, sp);
    std::string_view rest = msg.substr(sp + 1);
    if (kind == "+" || kind == "-") {
      const auto sp2 = rest.find(' ');
      if (sp2 == std::string_view::npos) return;
      const std::string_view node = rest.substr(0, sp2), user = rest.substr(sp2 + 1);
      if (kind == "+")
        cache.add(node, user);
      else
        cache.remove(node, user);
    } else if (kind == "dead") {
      if (rest == options.node) {
        // Another node found this one silent for a ttl (e.g. Redis was away): register again.
        if (!stopping) register_node();
        return;
      }
      cache.drop_node(rest);
      log(fmt::format("redis gateway: node {} left; its users are offline", rest));
    } else if (kind == "sync" && rest != options.node) {
      resync();
    }
  }

  // ---- subscriptions: presence changes and the command channel

  void on_subscriptions(bool up, std::string_view why) {
    if (!up) {
      log(fmt::format("redis gateway: subscriptions connection down: {}", why));
      return;
    }
    if (ever_subscribed) bump(counters.reconnects);
    ever_subscribed = true;
    std::vector<std::string_view> args{"SUBSCRIBE", presence_channel};
    if (options.commands) args.push_back(cmd_key);
    subscriptions.push_command(args);
    log("redis gateway: subscriptions connection up");
  }

  void on_push(redisReply* r) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const std::string_view kind = str(r->element[0]), ch = str(r->element[1]);
    if (kind == "subscribe" && ch == presence_channel) {
      resync();  // subscribed first, then read: no change falls between
    } else if (kind == "message" && ch == presence_channel) {
      on_presence(str(r->element[2]));
    } else if (kind == "message" && ch == cmd_key) {
      handle(str(r->element[2]));
    }
  }

  // ---- the command stream

  void on_reader(bool up, std::string_view why) {
    if (!up) {
      log(fmt::format("redis gateway: commands connection down: {}", why));
      return;
    }
    if (last_id.empty()) {
      // Start after the newest entry: what was sent before this node started is not for it.
      std::array<std::string_view, 6> args{"XREVRANGE", cmd_key, "+", "-", "COUNT", "1"};
      reader.command(args, [this](redisReply* r) {
        if (!r || r->type != REDIS_REPLY_ARRAY) return;  // reconnects, and asks again
        last_id = "0-0";
        if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 1)
          last_id = str(r->element[0]->element[0]);
        read();
      });
      return;
    }
    read();
  }

  void read() {
    if (stopping) return;
    const std::string count = std::to_string(options.read_batch);
    std::array<std::string_view, 8> args{"XREAD", "COUNT", count, "BLOCK", "5000", "STREAMS", cmd_key, last_id};
    reader.command(args, [this](redisReply* r) {
      if (!r) return;  // connection lost: on_reader continues from last_id
      if (r->type == REDIS_REPLY_ARRAY)
        on_entries(r);
      else if (r->type == REDIS_REPLY_ERROR && failure_logs++ < 10)
        log(fmt::format("redis gateway: XREAD failed: {}", str(r)));
      read();
    });
  }

  void on_entries(redisReply* r) {
    // [[key, [[id, [field, value, ...]], ...]]]
    if (r->elements < 1 || r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements < 2) return;
    const redisReply* entries = r->element[0]->element[1];
    if (entries->type != REDIS_REPLY_ARRAY) return;
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    for (std::size_t i = 0; i < entries->elements; ++i) {
      const redisReply* e = entries->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
      const std::string_view id = str(e->element[0]);
      if (!id.empty()) last_id = id;
      const redisReply* fields = e->element[1];
      std::string_view command, origin;
      bool has_command = false;
      if (fields->type == REDIS_REPLY_ARRAY)
        for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
          const std::string_view name = str(fields->element[f]);
          if (name == "command") {
            command = str(fields->element[f + 1]);
            has_command = true;
          } else if (name == "origin") {
            origin = str(fields->element[f + 1]);
          }
        }
      if (origin == options.node) continue;  // forwarded by this node, which ran it already
      std::int64_t id_ms = 0;
      std::from_chars(id.data(), id.data() + id.size(), id_ms);
      if (id_ms != 0 && now_ms - id_ms > options.max_command_age.count()) {
        bump(counters.received);
        bump(counters.expired);
        continue;
      }
      if (!has_command) {
        bump(counters.received);
        bump(counters.malformed);
        continue;
      }
      handle(command);
    }
  }

  // ---- running a command from Redis

  void handle(std::string_view command) {
    bump(counters.received);
    if (command.size() > options.max_command_bytes) {
      bump(counters.malformed);
      return;
    }
    simdjson::dom::element doc;
    if (parser.parse(command.data(), command.size(), true).get(doc)) {
      bump(counters.malformed);
      return;
    }
    simdjson::dom::array batch;
    if (!batch_of(doc, batch)) {
      run(doc, command);
      return;
    }
    for (auto e : batch) run(e, {});  // each on its own: another node's client is skipped here
  }

  void run(simdjson::dom::element e, std::string_view text) {
    switch (scope_of(e, options.node)) {
      case Scope::invalid: bump(counters.malformed); return;
      case Scope::remote: bump(counters.other_node); return;
      case Scope::local:
      case Scope::cluster: break;
    }
    if (!executor) return;
    bump(counters.executed);
    const std::string owned = text.empty() ? simdjson::to_string(e) : std::string(text);
    if (is_error_answer(executor(owned))) {
      bump(counters.failed);
      if (failure_logs++ < 10) log(fmt::format("redis gateway: command failed: {:.200}", owned));
    }
  }

  // ---- forwarding this node's API commands

  void forward(const std::string& command) {
    if (!writes.connected()) {
      bump(counters.forward_dropped);
      return;
    }
    const std::string maxlen = std::to_string(options.command_stream_maxlen);
    std::array<std::string_view, 10> args{"XADD", cmd_key,   "MAXLEN", "~",      maxlen,
                                          "*",    "command", command,  "origin", options.node};
    const bool sent = writes.command(args, [this](redisReply* r) {
      if (r && r->type == REDIS_REPLY_STRING)
        bump(counters.forwarded);
      else
        bump(counters.forward_dropped);
    });
    if (!sent) bump(counters.forward_dropped);
  }

  // ---- leaving

  void stop(std::function<void()> done) {
    stopping = true;
    heartbeat.cancel();
    // Run from the loop, never inside a hiredis callback (it stops the connection calling back).
    auto finish = [w = weak_from_this(), &io = io, done = std::move(done)] {
      asio::post(io, [w, done] {
        if (auto self = w.lock()) {
          self->writes.stop();
          self->subscriptions.stop();
          self->reader.stop();
        }
        if (done) done();
      });
    };
    std::array<std::string_view, 7> args{"EVAL",       k_leave_script,  "2", nodes_key, own_set,
                                         options.node, presence_channel};
    if (!writes.command(args, [finish](redisReply*) { finish(); })) finish();
  }

  asio::io_context& io;
  Options options;
  detail::PresenceCache cache;
  detail::RedisConnection writes, subscriptions, reader;
  asio::steady_timer heartbeat;
  const std::string cmd_key, presence_channel, nodes_key, set_prefix, own_set;
  Executor executor;
  LogHandler on_log;
  Counters counters;
  simdjson::dom::parser parser;  // commands from Redis, on the io_context's thread
  std::string last_id;           // of the command stream; empty until the first connect
  bool resync_pending = false, resync_in_flight = false, resync_again = false;
  bool ever_subscribed = false, stopping = false;
  bool registered = false;  // once: a name clash is looked for at the first registration only
  std::uint64_t failure_logs = 0;
};

RedisGatewayLink::RedisGatewayLink(asio::io_context& io, Options options)
    : options_(std::move(options)), impl_(std::make_shared<Impl>(io, options_)) {
  if (options_.node.empty() || options_.node.find_first_of(" -") != std::string::npos)
    throw std::invalid_argument("RedisGatewayLink: node must be a non-empty name without '-' or ' '");
  if (options_.presence_ttl < std::chrono::milliseconds(100))
    throw std::invalid_argument("RedisGatewayLink: presence_ttl must be at least 100 ms");
}

RedisGatewayLink::~RedisGatewayLink() = default;

void RedisGatewayLink::set_executor(Executor executor) { impl_->executor = std::move(executor); }
void RedisGatewayLink::set_log_handler(LogHandler handler) { impl_->on_log = std::move(handler); }

void RedisGatewayLink::start() {
  impl_->stopping = false;
  impl_->writes.start();
  impl_->subscriptions.start();
  if (options_.commands) impl_->reader.start();
}

void RedisGatewayLink::stop(std::function<void()> done) { impl_->stop(std::move(done)); }

std::string RedisGatewayLink::execute(std::string_view command_json) {
  const Scope s = scope(command_json, options_.node);
  if (s == Scope::remote) {
    forward(command_json);
    return R"({"ok":true,"forwarded":true})";
  }
  std::string answer = impl_->executor ? impl_->executor(command_json) : std::string(R"({"error":"no executor"})");
  if (s == Scope::cluster) forward(command_json);
  return answer;
}

void RedisGatewayLink::forward(std::string_view command_json) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), c = std::string(command_json)] {
    if (auto impl = w.lock()) impl->forward(c);
  });
}

ApiExecutor::Reach RedisGatewayLink::forward_action(const ApiCommand& c) {
  using Reach = ApiExecutor::Reach;
  if (!ApiCommand::is_action(c.kind)) return Reach::here;
  const bool one_client = !c.client.empty() && !(c.kind == ApiCommand::Kind::disconnect && !c.user.empty());
  if (one_client && node_of_client(c.client) == options_.node) return Reach::here;
  if (!impl_->writes.connected()) {  // not forwarded: the answer says so
    bump(impl_->counters.forward_dropped);
    return one_client ? Reach::unreachable : Reach::here;
  }
  forward(to_json(c));
  return one_client ? Reach::elsewhere : Reach::everywhere;
}

void RedisGatewayLink::local_user(std::string_view user, bool online) {
  asio::post(impl_->io, [w = std::weak_ptr<Impl>(impl_), u = std::string(user), online] {
    if (auto impl = w.lock()) impl->local_user(u, online);
  });
}

bool RedisGatewayLink::is_online(std::string_view user) const { return impl_->cache.online(user); }
std::size_t RedisGatewayLink::online_count() const { return impl_->cache.user_count(); }

bool RedisGatewayLink::connected() const noexcept {
  return impl_->writes.connected() && impl_->subscriptions.connected() &&
         (!options_.commands || impl_->reader.connected());
}

RedisGatewayLink::Stats RedisGatewayLink::stats() const {
  const Counters& c = impl_->counters;
  auto v = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  Stats s;
  s.received = v(c.received);
  s.executed = v(c.executed);
  s.failed = v(c.failed);
  s.malformed = v(c.malformed);
  s.other_node = v(c.other_node);
  s.expired = v(c.expired);
  s.forwarded = v(c.forwarded);
  s.forward_dropped = v(c.forward_dropped);
  s.online_users = impl_->cache.user_count();
  s.nodes = impl_->cache.node_count();
  s.presence_dropped = impl_->cache.dropped();
  s.resyncs = v(c.resyncs);
  s.reconnects = v(c.reconnects);
  return s;
}

}  // namespace fanout

// fanout/redis_gateway_link.hpp — links the Gateways of several nodes through Redis: the server API's
// commands reach every node (so send_to_user finds the user on whichever node holds the
// connection), and is_online / the online count see the users of every node.
//
//   fanout::RedisGatewayLink link(io, {.host = "127.0.0.1", .port = 6379, .node = "n1"});
//   fanout::ApiExecutor here(gateway, hub);                            // what commands from Redis run on
//   link.set_executor([&](std::string_view cmd) { return here.execute_json(cmd).body; });
//   fanout::ServerApi api(gateway, hub, {.keys = {key}, .executor = {
//       .forward = [&](const fanout::ApiCommand& c) { return link.forward_action(c); },  // to the others
//       .online = [&](std::string_view user) { return link.is_online(user); }}});       // cluster-wide
//   link.start();
//   // business code in any language, one Redis command:
//   //   XADD fanout:cmd MAXLEN ~ 10000 * command '{"cmd":"send_to_user","user":"u1","data":{"hi":1}}'
//   //   PUBLISH fanout:cmd '{"cmd":"send_to_user","user":"u1","data":{"hi":1}}'
//
// Commands (docs/cluster.md): the stream `prefix:cmd` (field `command`, and `origin` when a node
// forwarded it) is read by every node with XREAD from the last id it read, so a node whose Redis
// link blipped executes what was added meanwhile (entries older than max_command_age are skipped);
// the pub/sub channel of the same name is also consumed (at most once: what is published while a
// node is disconnected is lost for it). A command names a client of one node ("n2-1f"): only that
// node executes it; any other command runs on every node. Malformed, oversized or unknown commands
// are counted and ignored.
//
// Presence: each node keeps its users in the set `prefix:presence:{node}` (with a TTL) and its
// heartbeat in the sorted set `prefix:nodes`; changes go out on the channel `prefix:presence`.
// Every node caches all of it in memory (full read on every (re)connect, then the changes), so
// is_online() answers without a Redis round trip. A node that stops beating for presence_ttl is
// removed by the others' heartbeats (its users go offline everywhere); stop() removes it at once.
//
// Three connections (writes, subscriptions, the blocking stream read), each reconnecting with backoff
// on the io_context given; no thread of its own, nothing blocking.
//
// Thread safety: execute(), forward(), local_user(), is_online(), online_count(), stats(),
// connected() from any thread; the other member functions before start() or on the io_context's
// thread. The executor runs on the io_context's thread (for commands from Redis) or on the caller's
// (execute()). Destroy the link after the io_context stopped running (or on its thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <asio/io_context.hpp>

#include "fanout/api_commands.hpp"
#include "fanout/export.hpp"

namespace fanout {

class FANOUT_API RedisGatewayLink {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string prefix = "fanout";               // keys and channels: prefix:cmd, prefix:presence, prefix:nodes ...
    std::string node = "n1";                     // this node: its Gateway's Options::node (client ids "n1-1f")
    bool commands = true;                        // consume prefix:cmd (stream and channel)
    std::size_t command_stream_maxlen = 10'000;  // prefix:cmd is trimmed to about this (XADD/XTRIM MAXLEN ~)
    std::size_t max_command_bytes = 1 << 20;     // longer commands are counted as malformed and ignored
    std::chrono::milliseconds max_command_age = std::chrono::seconds(30);  // older stream entries are skipped
    std::size_t read_batch = 100;  // stream entries per XREAD (bounds one reply's size)
    std::chrono::milliseconds presence_ttl = std::chrono::seconds(5);  // a silent node's users go offline after it
    std::size_t max_presence_users = 1'000'000;  // (node, user) pairs of other nodes kept; more are ignored
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(2);
    std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(100);
    std::chrono::milliseconds backoff_max = std::chrono::seconds(2);
  };

  struct Stats {
    std::uint64_t received = 0;          // commands read from the stream or the channel
    std::uint64_t executed = 0;          // handed to the executor
    std::uint64_t failed = 0;            // the executor answered with an error (unknown command, bad field)
    std::uint64_t malformed = 0;         // not a JSON command, or longer than max_command_bytes
    std::uint64_t other_node = 0;        // addressed a client of another node: not for this one
    std::uint64_t expired = 0;           // stream entries older than max_command_age when read
    std::uint64_t forwarded = 0;         // sent to the other nodes (XADD accepted)
    std::uint64_t forward_dropped = 0;   // not sent: Redis down, or the reply was an error
    std::uint64_t online_users = 0;      // distinct users online in the cluster (this node's cache)
    std::uint64_t nodes = 0;             // nodes with users
    std::uint64_t presence_dropped = 0;  // other nodes' users not cached (max_presence_users)
    std::uint64_t resyncs = 0;           // full presence reads
    std::uint64_t reconnects = 0;        // subscription connection re-established
  };

  /// Runs one command on this node and answers it (the server API's executor: JSON in, JSON out).
  using Executor = std::function<std::string(std::string_view command_json)>;
  /// Connection state changes and notable events, for logs.
  using LogHandler = std::function<void(std::string_view line)>;

  /// Where a command acts, by its "cmd" and its client field ("client" or "client_id").
  enum class Scope {
    local,    // a query, or a client of this node: run here only
    cluster,  // users, topics, everyone: run here and on every other node
    remote,   // a client of another node: that node only
    invalid,  // not a JSON object with a string "cmd"
  };
  static Scope scope(std::string_view command_json, std::string_view node);

  RedisGatewayLink(asio::io_context& io, Options options);
  ~RedisGatewayLink();
  RedisGatewayLink(const RedisGatewayLink&) = delete;
  RedisGatewayLink& operator=(const RedisGatewayLink&) = delete;

  void set_executor(Executor executor);
  void set_log_handler(LogHandler handler);
  void start();
  /// Removes this node's presence from Redis (its users go offline on the other nodes now, not after
  /// presence_ttl), then closes the connections; `done` runs on the io_context's thread after that.
  void stop(std::function<void()> done = {});

  /// The server API on this node: runs the command here when it acts here (the executor's answer is
  /// returned) and forwards it to the other nodes when it acts there. A command for another node's
  /// client answers {"ok":true,"forwarded":true} (what it did is not known here).
  std::string execute(std::string_view command_json);
  /// Sends a command to the other nodes (this one does not run it): XADD prefix:cmd.
  void forward(std::string_view command_json);
  /// ApiExecutor::Options::forward: forwards an action (to_json) unless it names a client of this
  /// node, and says where it acts.
  ApiExecutor::Reach forward_action(const ApiCommand& command);

  /// This node's Gateway: `user` got its first connection here (true) or lost its last (false).
  void local_user(std::string_view user, bool online);
  /// Online on any node (this one included), as this node's cache knows it.
  bool is_online(std::string_view user) const;
  /// Distinct users online on all nodes.
  std::size_t online_count() const;

  Stats stats() const;
  /// All three connections are up.
  bool connected() const noexcept;
  const Options& options() const noexcept { return options_; }

 private:
  struct Impl;
  Options options_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fanout

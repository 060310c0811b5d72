// fanout/gateway.hpp — the two-way surface a GatewayWorker-style application needs: every connection
// by a client id unique across nodes, user ids bound to connections, and messages addressed to one
// client, one user, a topic or everyone — from any thread. docs/migrating-from-gatewayworker.md maps
// each GatewayWorker call to these.
//
//   fanout::Gateway gateway(rt, hub, {.node = "n1"});
//   fanout::Server server(rt, hub, options, {
//       .on_connect = [&](const fanout::ConnectRequest& r, fanout::ConnectDecide decide) {
//         auto uid = r.cookie("uid");                       // or a token, or a backend's answer
//         decide(uid ? fanout::ConnectDecision::accepted(*uid, {"room:1"})
//                    : fanout::ConnectDecision::refused(401, "log in first"));
//       },
//       .on_message = [&](fanout::Session& s, std::string_view text, fanout::Opcode) {
//         gateway.publish("room:1", text, {gateway.client_id(s)});   // everyone in the room but the sender
//       }});
//   gateway.attach(server);   // before rt.start()
//   ...
//   gateway.send_to_user("alice", R"({"type":"hello"})");   // every connection alice has, on any shard
//
// Costs: a server with no gateway attached pays nothing. With one, each connection is registered
// (id -> shard) and each bound user id and each subscription of a connection is indexed once, so
// the queries below answer from any thread without waiting on a shard.
//
// Thread safety: every member function may be called from any thread, also from Server callbacks
// and HTTP route handlers (on shard threads): none waits for another shard. Sends are queued to the
// sessions' shards; their return value is what was addressed when the call was made.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/error.hpp"
#include "fanout/export.hpp"
#include "fanout/frame.hpp"

namespace fanout {

class Hub;
class Runtime;
class Server;
class Session;
namespace detail {
struct GatewayState;
}

class FANOUT_API Gateway {
 public:
  struct Options {
    // This node's name in client ids ("<node>-<hex counter>"): unique in a cluster, [A-Za-z0-9_.]{1,32}.
    std::string node = "n1";
    std::size_t max_user_id_bytes = 128;         // longer user ids are refused (bind_user false, 4xx in the API)
    std::size_t max_connections_per_user = 100;  // bind_user past it is refused, an upgrade 503; 0: no limit
    std::size_t max_list = 10'000;               // most entries a list returns (counts are always exact)
    /// A user got its first connection on this node (true) or lost its last (false): what a cluster
    /// needs to know (RedisGatewayLink::local_user). Runs with the gateway's lock held, on the
    /// thread that made the change: keep it short and never call the gateway from it.
    std::function<void(std::string_view user, bool online)> on_user_presence{};
  };

  /// One user in a topic's presence list.
  struct Member {
    std::string user;
    std::size_t connections = 0;  // of this user, in the topic, on this node
  };

  struct Stats {
    std::uint64_t connections = 0;  // registered now
    std::uint64_t users = 0;        // distinct bound user ids now
    std::uint64_t sends = 0;        // messages queued by send_* and publish-with-exclude, per connection
  };

  Gateway(Runtime& runtime, Hub& hub);
  Gateway(Runtime& runtime, Hub& hub, Options options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  /// Registers `server`'s connections (each gets a client id at accept); before Runtime::start().
  /// Several servers (listeners) may attach to one gateway; the gateway must outlive them.
  void attach(Server& server);

  const Options& options() const noexcept;
  /// The connection's id, e.g. "n1-1f": what the HTTP and Redis APIs, logs and backends name it by.
  std::string client_id(const Session& session) const;

  // ---- users (GatewayWorker: bindUid, unbindUid, isUidOnline, getClientIdByUid, closeUser)
  /// Binds a user id to a connection (a user may have several connections; a connection one user: a
  /// second bind replaces the first). False for an unknown client, an invalid id or past the limits.
  bool bind_user(std::string_view client_id, std::string_view user);
  bool unbind_user(std::string_view client_id);
  bool is_online(std::string_view user) const;
  std::vector<std::string> clients_of_user(std::string_view user) const;
  std::size_t user_count() const;
  std::size_t connection_count() const;

  // ---- sends; each returns how many connections it was queued to (0: nobody; not an error)
  std::size_t send_to_client(std::string_view client_id, std::string_view payload, Opcode op = Opcode::text);
  std::size_t send_to_user(std::string_view user, std::string_view payload, Opcode op = Opcode::text);
  /// To every connection of every attached server, but those in `exclude` (client ids).
  std::size_t send_to_all(std::string_view payload, const std::vector<std::string>& exclude = {},
                          Opcode op = Opcode::text);
  /// Hub::publish (history, seq, recovery) when `exclude` is empty; with an exclude list the message
  /// goes live to the topic's members but those clients (GatewayWorker's sendToGroup exclude).
  std::size_t publish(std::string_view topic, std::string_view payload, const std::vector<std::string>& exclude = {},
                      Opcode op = Opcode::text);

  // ---- topics as groups (joinGroup, leaveGroup, getClientCountByGroup, getClientIdListByGroup, getUidListByGroup)
  /// Joins a connection to a topic on the application's authority (Session::subscribe).
  bool join(std::string_view client_id, std::string_view topic);
  bool leave(std::string_view client_id, std::string_view topic);
  std::size_t topic_client_count(std::string_view topic) const;
  std::vector<std::string> topic_clients(std::string_view topic) const;  // at most max_list
  std::vector<Member> topic_users(std::string_view topic) const;         // presence: at most max_list
  std::size_t topic_user_count(std::string_view topic) const;

  // ---- closing (closeClient, and all of a user's connections)
  bool close_client(std::string_view client_id, CloseCode code = CloseCode::normal, std::string_view reason = {});
  std::size_t close_user(std::string_view user, CloseCode code = CloseCode::normal, std::string_view reason = {});

  Stats stats() const;

 private:
  std::unique_ptr<detail::GatewayState> state_;
};

}  // namespace fanout

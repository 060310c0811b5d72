// fanout/detail/gateway_hooks.hpp — what a Server's sessions tell an attached Gateway (gateway.hpp).
// A ServerShard holds a pointer to it (null without a gateway: one test per event, nothing else).
// Every call comes from the session's shard thread; an implementation may take its own short locks
// but must never wait for another shard.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fanout {
class Session;
namespace detail {

class GatewayHooks {
 public:
  virtual ~GatewayHooks() = default;
  /// The connection's id in the gateway's form ("<node>-<hex id>"): ConnectRequest::client_id.
  virtual std::string client_id(std::uint64_t session_id) const = 0;
  /// Before the upgrade is answered: false when the connection's user_id() has
  /// max_connections_per_user connections already (a capacity limit: 503 with Retry-After).
  virtual bool may_open(const Session& s) const = 0;
  /// After the upgrade, before Server::Callbacks::on_open: registers it (and binds its user_id()).
  virtual void opened(Session& s) = 0;
  /// When it ends (after it left its topics).
  virtual void closed(Session& s) = 0;
  /// It joined or left a topic (a client's subscribe, Session::subscribe, Gateway::join).
  virtual void joined(Session& s, std::string_view topic) = 0;
  virtual void left(Session& s, std::string_view topic) = 0;
  /// Its identity changed (Session::set_identity, e.g. an auth op): rebinds it to the new user_id().
  virtual void identity_changed(Session& s) = 0;
  /// A subscribe with "presence":true: join/leave events of `topic` go to `s`. False when the
  /// topic has too many watchers already (`error` says why).
  virtual bool watch(Session& s, std::string_view topic, std::string& error) = 0;
  /// The answer to {"op":"presence","arg":topic}: the whole event JSON.
  virtual std::string presence(std::string_view topic) const = 0;
};

}  // namespace detail
}  // namespace fanout

// The relay's link to other relays through Redis (role ingest, edge, or both with [redis] set):
// ingest leadership per upstream (RedisLease) and the RedisBus that carries routed messages.
//
//   ingest: an upstream is connected only while this node holds its lease; routed messages go to
//           Redis with the lease's fencing number (a refused publish steps the node down at once).
//   edge:   the hub's topics with members are subscribed in Redis; what arrives is published into
//           the hub with the bus's seq, so every edge numbers a topic alike. Which topics exist is
//           read from Redis (RedisBus's registry): clients join only those, as on the ingest node.
//   gateway: the server API's commands reach every node and users' presence is cluster-wide
//           (RedisGatewayLink, [redis] gateway; docs/cluster.md).
//
// Thread safety: everything on the ingest io_context's thread, except stats_line().
#pragma once

#include <fanout/hub.hpp>
#include <fanout/redis_bus.hpp>
#include <fanout/redis_gateway_link.hpp>
#include <fanout/redis_lease.hpp>
#include <fanout/router.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config.hpp"

namespace relay {

class BusNode {
 public:
  using Log = std::function<void(const std::string& line)>;

  /// Throws std::invalid_argument for bad lease settings.
  BusNode(asio::io_context& io, const Config& config, fanout::Hub& hub, Log log);

  bool ingest() const noexcept { return config_.role != Role::edge; }
  bool edge() const noexcept { return config_.role != Role::ingest; }

  /// Ingest: `stream` (an upstream's name) is ingested only while this node holds its lease.
  void lead(const std::string& stream, std::function<void()> start_upstream, std::function<void()> stop_upstream);
  /// Ingest: one routed upstream message. Dropped when this node does not lead `stream`.
  void publish(const std::string& stream, const fanout::Routed& r, std::string_view msg, bool binary);

  /// Edge (and role both) with [redis] gateway on: the link of this node's Gateway (named `node`, as
  /// in its client ids) to the other nodes; nullptr when off. Before start(); set its executor (what
  /// commands from Redis run on) before start() too.
  fanout::RedisGatewayLink* link_gateway(const std::string& node);
  fanout::RedisGatewayLink* gateway_link() noexcept { return link_.get(); }

  void start();
  /// Steps down from every lease (deleting the keys, so standbys take over at once), takes this
  /// node's users out of the cluster's presence, then closes the connections; `done` runs when that
  /// is finished.
  void stop(std::function<void()> done);

  std::string stats_line() const;
  /// Empty without a gateway link.
  std::string gateway_stats_line() const;
  /// Both Redis connections are up (any thread): /readyz.
  bool connected() const noexcept { return bus_.connected(); }

 private:
  struct Lease {
    std::unique_ptr<fanout::RedisLease> lease;
    std::function<void()> start_upstream, stop_upstream;
  };

  asio::io_context& io_;
  const Config& config_;
  Log log_;
  fanout::RedisBus bus_;
  std::unique_ptr<fanout::RedisGatewayLink> link_;
  std::map<std::string, Lease, std::less<>> leases_;
};

}  // namespace relay

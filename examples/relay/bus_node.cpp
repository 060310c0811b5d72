#include "bus_node.hpp"

#include <fmt/format.h>

namespace relay {

BusNode::BusNode(asio::io_context& io, const Config& config, fanout::Hub& hub, Log log)
    : io_(io),
      config_(config),
      log_(std::move(log)),
      bus_(io, fanout::RedisBus::Options{.host = config.redis.host,
                                         .port = config.redis.port,
                                         .prefix = config.redis.prefix,
                                         .stream_maxlen = config.redis.stream_maxlen,
                                         .subscribe_all = config.redis.subscribe_all}) {
  bus_.set_log_handler([this](std::string_view line) { log_(std::string(line)); });
  bus_.set_fenced_handler([this](std::string_view stream, std::uint64_t fence) {
    auto it = leases_.find(stream);
    if (it != leases_.end() && it->second.lease->fence() == fence) it->second.lease->deposed();
  });
  if (edge()) bus_.attach(hub);  // also: the edge's clients may join every topic the cluster has
  // Declared topics exist cluster-wide before their first message: edges learn them from Redis.
  if (ingest())
    for (const auto& t : config.hub.topics) bus_.declare_topic(t);
}

void BusNode::lead(const std::string& stream, std::function<void()> start_upstream,
                   std::function<void()> stop_upstream) {
  fanout::RedisLease::Options o;
  o.host = config_.redis.host;
  o.port = config_.redis.port;
  o.prefix = config_.redis.prefix;
  o.stream = stream;
  o.ttl = config_.redis.lease_ttl;
  Lease& l = leases_[stream];
  l.start_upstream = std::move(start_upstream);
  l.stop_upstream = std::move(stop_upstream);
  l.lease = std::make_unique<fanout::RedisLease>(
      io_, o, [this, stream, &l](bool leader, std::uint64_t fence, std::string_view why) {
        if (leader) {
          log_(fmt::format("lease {} won: fence {} ({})", stream, fence, why));
          l.start_upstream();
        } else {
          log_(fmt::format("lease {} lost: {}", stream, why));
          l.stop_upstream();  // a standby again: no upstream until the lease is won back
        }
      });
}

void BusNode::publish(const std::string& stream, const fanout::Routed& r, std::string_view msg, bool binary) {
  auto it = leases_.find(stream);
  const std::uint64_t fence = it == leases_.end() ? 0 : it->second.lease->fence();
  if (fence == 0) return;  // lost the lease; the upstream is being stopped
  bus_.publish({.topic = r.topic,
                .key = r.key ? std::string_view(*r.key) : std::string_view{},
                .payload = msg,
                .fence = fence,
                .op = binary ? fanout::Opcode::binary : fanout::Opcode::text},
               stream);
}

fanout::RedisGatewayLink* BusNode::link_gateway(const std::string& node) {
  if (!edge() || !config_.redis.gateway) return nullptr;
  const auto& r = config_.redis;
  link_ = std::make_unique<fanout::RedisGatewayLink>(io_, fanout::RedisGatewayLink::Options{
                                                              .host = r.host,
                                                              .port = r.port,
                                                              .prefix = r.prefix,
                                                              .node = node,
                                                              .command_stream_maxlen = r.command_stream_maxlen,
                                                              .max_command_bytes = r.max_command_bytes,
                                                              .max_command_age = r.max_command_age,
                                                              .presence_ttl = r.presence_ttl,
                                                          });
  link_->set_log_handler([this](std::string_view line) { log_(std::string(line)); });
  return link_.get();
}

void BusNode::start() {
  log_(fmt::format("bus: redis {}:{} prefix '{}', role {}", config_.redis.host, config_.redis.port,
                   config_.redis.prefix, to_string(config_.role)));
  bus_.start();
  if (link_) {
    log_(fmt::format("gateway: node {} linked through redis ({}:cmd, {}:presence)", link_->options().node,
                     config_.redis.prefix, config_.redis.prefix));
    link_->start();
  }
  for (auto& [name, l] : leases_) {
    log_(fmt::format("lease {}: standby (ttl {} ms)", name, config_.redis.lease_ttl.count()));
    l.lease->start();
  }
}

void BusNode::stop(std::function<void()> done) {
  auto left = std::make_shared<std::size_t>(leases_.size() + 1 + (link_ ? 1 : 0));
  auto finish = [this, left, done = std::move(done)] {
    if (--*left != 0) return;
    bus_.stop();
    if (done) done();
  };
  for (auto& [name, l] : leases_) l.lease->stop(finish);
  if (link_) link_->stop(finish);
  finish();
}

std::string BusNode::stats_line() const {
  const auto s = bus_.stats();
  return fmt::format(
      "bus: published {} dropped {} failed {} fenced-out {} | delivered {} recovered {} duplicates {} fenced {} "
      "gaps {} reconnects {} topics {} known {}",
      s.published, s.publish_dropped, s.publish_failed, s.publish_fenced, s.delivered, s.recovered, s.duplicates,
      s.fenced, s.gaps, s.reconnects, s.topics, s.known_topics);
}

std::string BusNode::gateway_stats_line() const {
  if (!link_) return {};
  const auto g = link_->stats();
  return fmt::format(
      "gateway: commands received {} executed {} failed {} malformed {} other-node {} expired {} forwarded {} "
      "forward-dropped {} | online users {} nodes {} presence-dropped {} resyncs {}",
      g.received, g.executed, g.failed, g.malformed, g.other_node, g.expired, g.forwarded, g.forward_dropped,
      g.online_users, g.nodes, g.presence_dropped, g.resyncs);
}

}  // namespace relay

// fanout/detail/topic.hpp — a topic's shared record and its per-shard member lists.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fanout {
class Session;
namespace detail {

/// Members of one topic on one shard. Touched only by that shard's thread.
struct Group {
  std::vector<Session*> members;
};

struct Topic {
  Topic(std::string n, std::size_t shards) : name(std::move(n)), groups(new Group[shards]) {}

  const std::string name;
  /// Bit i set while shard i has at least one member: publish posts only to those shards.
  std::atomic<std::uint64_t> shard_mask{0};
  /// Members over all shards.
  std::atomic<std::int64_t> members{0};
  std::unique_ptr<Group[]> groups;
};

}  // namespace detail
}  // namespace fanout

// fanout/detail/runtime_access.hpp — what the library's own parts (Hub, Server) reach inside a
// Runtime: a shard's state and its loop. Not for applications.
#pragma once

#include <cstddef>

#include "fanout/detail/loop.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/runtime.hpp"

namespace fanout::detail {

struct RuntimeAccess {
  static Shard& shard(Runtime& r, std::size_t i) noexcept { return *r.shards_[i]; }
  static Loop& loop(Runtime& r, std::size_t i) noexcept { return *r.loops_[i]; }
};

}  // namespace fanout::detail

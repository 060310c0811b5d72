// fanout/detail/deflate_stats.hpp — what permessage-deflate compress-once did, process-wide
// (Frame::deflated counts; /metrics reads: fanout_deflate_compressions_total, fanout_deflate_bytes_saved_total).
//
// Counted once per message compressed, never per client that receives it: relaxed atomics.
// Thread safety: any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "fanout/export.hpp"

namespace fanout::detail {

struct DeflateStats {
  std::atomic<std::uint64_t> compressions{0};  // messages compressed (incompressible ones included)
  std::atomic<std::uint64_t> bytes_saved{0};   // frame bytes the compressed frames spare, per message
  // Deliveries sent uncompressed because another thread was compressing that message just then.
  std::atomic<std::uint64_t> raced{0};
};

FANOUT_API DeflateStats& deflate_stats() noexcept;

}  // namespace fanout::detail

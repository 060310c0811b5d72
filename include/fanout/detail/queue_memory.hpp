// fanout/detail/queue_memory.hpp — what outbound queues really hold, process-wide, and the budget.
//
// A queue's bytes() counts every frame it references, but frames are shared: 10,000 queues holding
// the same 1 KiB frame hold 1 KiB of frame, plus 10,000 ring slots. So the memory is accounted where
// it is allocated: ring storage when a queue grows or frees it (OutboundQueue), and frame bytes when
// a Frame is allocated or released (each frame once, however many queues, history rings or latest
// values reference it). Both are relaxed atomics touched per allocation, never per delivery.
// Frames a topic's history or latest values hold stay alive whatever the queues do (Hub::Options
// bounds them), so what the hub reports holding is taken off: the budget is the queues' share.
//
// Thread safety: any thread.
#pragma once

#include <atomic>
#include <cstddef>

#include "fanout/export.hpp"

namespace fanout::detail {

/// Under budget pressure no client is squeezed below this many queued frames, and no ring this
/// large grows: a client that keeps up holds a loop turn's worth of frames, far fewer than this.
inline constexpr std::size_t k_budget_floor_frames = 256;

struct QueueMemory {
  std::atomic<std::size_t> slot_bytes{0};     // ring storage of every OutboundQueue
  std::atomic<std::size_t> frame_bytes{0};    // every live Frame (header and bytes), counted once
  std::atomic<std::size_t> budget{0};         // Server::Options::queue_budget_bytes in force; 0: none
  std::atomic<std::size_t> history_bytes{0};  // Hub::history_bytes(), sampled by the servers' ticks

  /// Live frame bytes beyond what history and latest values hold: the frames only queues keep alive.
  std::size_t queued_frame_bytes() const noexcept {
    const std::size_t all = frame_bytes.load(std::memory_order_relaxed);
    const std::size_t kept = history_bytes.load(std::memory_order_relaxed);
    return all > kept ? all - kept : 0;
  }
  std::size_t used() const noexcept { return slot_bytes.load(std::memory_order_relaxed) + queued_frame_bytes(); }
  bool over_budget() const noexcept {
    const std::size_t b = budget.load(std::memory_order_relaxed);
    return b != 0 && used() > b;
  }
};

/// The process's accounting (one, whatever the number of servers).
FANOUT_API QueueMemory& queue_memory() noexcept;

}  // namespace fanout::detail

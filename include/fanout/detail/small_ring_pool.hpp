// fanout/detail/small_ring_pool.hpp — storage for the smallest outbound queue rings, kept apart.
//
// Every session's queue gets its first ring (8 slots) when the subscribe reply is queued and frees it
// after ~10 s without traffic. From the general heap, those rings sit between objects that live as
// long as the connection (the session, its subscriptions), so when they are freed the holes stay
// resident (~150 B per idle connection at 18,000). Here they come from 64 KiB slabs mapped for them
// alone: a slab whose rings are all free goes back to the system, so idle connections leave no holes.
//
// Thread safety: any thread (a mutex; taken only when a queue gets or frees its first ring).
#pragma once

#include <cstddef>

#include "fanout/export.hpp"

namespace fanout::detail {

/// Bytes of one small ring: OutboundQueue's first ring (8 entries of 16 bytes).
inline constexpr std::size_t k_small_ring_bytes = 128;

/// A k_small_ring_bytes block (16-byte aligned); throws std::bad_alloc when no memory can be mapped.
FANOUT_API void* allocate_small_ring();
/// Gives back a block of allocate_small_ring().
FANOUT_API void free_small_ring(void* ring) noexcept;

/// What the pool maps now, in bytes (slabs in use, including their free rings).
FANOUT_API std::size_t small_ring_pool_bytes() noexcept;

}  // namespace fanout::detail

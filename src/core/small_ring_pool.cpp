// Slabs of small rings (detail/small_ring_pool.hpp). A slab is 64 KiB aligned to 64 KiB, so a ring
// finds its slab by masking its address; the slab's first 128 bytes are its header, the rest are
// rings handed out in address order and then recycled through a free list. Slabs with free rings are
// on a list; one that becomes empty is unmapped (one empty slab is kept so a connection that comes
// and goes at the boundary does not map and unmap each time).
#include "fanout/detail/small_ring_pool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <mutex>
#include <new>

namespace fanout::detail {
namespace {

constexpr std::size_t k_slab_bytes = 64 * 1024;
constexpr std::size_t k_page = 4096;  // madvise granularity (at least; larger pages only keep more)
constexpr std::size_t k_rings_per_slab = k_slab_bytes / k_small_ring_bytes - 1;  // the first is the header

struct FreeRing {
  FreeRing* next;
};

struct Slab {
  FreeRing* free = nullptr;  // recycled rings
  std::size_t carved = 0;    // rings handed out from the untouched tail so far
  std::size_t used = 0;      // rings handed out and not freed
  Slab* prev = nullptr;      // on the list of slabs with room
  Slab* next = nullptr;
  bool listed = false;

  std::byte* ring(std::size_t i) noexcept { return reinterpret_cast<std::byte*>(this) + (i + 1) * k_small_ring_bytes; }
  bool has_room() const noexcept { return free != nullptr || carved < k_rings_per_slab; }
};
static_assert(sizeof(Slab) <= k_small_ring_bytes);

struct Pool {
  std::mutex mutex;
  Slab* with_room = nullptr;  // doubly linked
  Slab* spare = nullptr;      // one empty slab kept mapped
  std::size_t slabs = 0;

  void link(Slab* s) noexcept {
    s->prev = nullptr;
    s->next = with_room;
    if (with_room) with_room->prev = s;
    with_room = s;
    s->listed = true;
  }
  void unlink(Slab* s) noexcept {
    if (s->prev)
      s->prev->next = s->next;
    else
      with_room = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    s->listed = false;
  }

  Slab* map_slab() {
    // Twice the size, then the unaligned ends go back: the kernel has no aligned mmap.
    void* p = ::mmap(nullptr, 2 * k_slab_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t aligned = (start + k_slab_bytes - 1) & ~(k_slab_bytes - 1);
    if (aligned > start) ::munmap(p, aligned - start);
    if (aligned + k_slab_bytes < start + 2 * k_slab_bytes)
      ::munmap(reinterpret_cast<void*>(aligned + k_slab_bytes), start + 2 * k_slab_bytes - aligned - k_slab_bytes);
    ++slabs;
    return new (reinterpret_cast<void*>(aligned)) Slab{};
  }
  void unmap_slab(Slab* s) noexcept {
    --slabs;
    ::munmap(s, k_slab_bytes);
  }
};

Pool& pool() {
  // Never destroyed: queues of sessions that outlive static destruction may still free into it.
  static Pool* const p = new Pool;
  return *p;
}

Slab* slab_of(void* ring) noexcept {
  return reinterpret_cast<Slab*>(reinterpret_cast<std::uintptr_t>(ring) & ~(k_slab_bytes - 1));
}

}  // namespace

void* allocate_small_ring() {
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  Slab* s = p.with_room;
  if (!s) {
    if (p.spare) {
      s = p.spare;
      p.spare = nullptr;
    } else {
      s = p.map_slab();
    }
    p.link(s);
  }
  void* ring;
  if (s->free) {
    ring = s->free;
    s->free = s->free->next;
  } else {
    ring = s->ring(s->carved++);  // pages are touched only as rings are handed out
  }
  ++s->used;
  if (!s->has_room()) p.unlink(s);
  return ring;
}

void free_small_ring(void* ring) noexcept {
  if (!ring) return;
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  Slab* s = slab_of(ring);
  s->free = new (ring) FreeRing{s->free};
  --s->used;
  if (s->used == 0) {
    if (s->listed) p.unlink(s);
    if (p.spare) {
      p.unmap_slab(s);
    } else {
      // Kept mapped, its pages past the header's given back: an idle server holds one page of it.
      ::madvise(reinterpret_cast<std::byte*>(s) + k_page, k_slab_bytes - k_page, MADV_DONTNEED);
      s->free = nullptr;
      s->carved = 0;
      p.spare = s;
    }
    return;
  }
  if (!s->listed) p.link(s);
}

std::size_t small_ring_pool_bytes() noexcept {
  Pool& p = pool();
  std::lock_guard lock(p.mutex);
  return p.slabs * k_slab_bytes;
}

}  // namespace fanout::detail

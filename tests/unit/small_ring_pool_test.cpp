#include "fanout/detail/small_ring_pool.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "fanout/outbound_queue.hpp"

using namespace fanout;

TEST_CASE("small_ring_pool: distinct aligned blocks, memory given back when all are free") {
  const std::size_t before = detail::small_ring_pool_bytes();
  std::vector<void*> rings;
  std::set<std::uintptr_t> seen;
  for (int i = 0; i < 2000; ++i) {  // more than three slabs
    void* r = detail::allocate_small_ring();
    REQUIRE(r != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(r) % 16 == 0);
    std::memset(r, i & 0xff, detail::k_small_ring_bytes);  // every byte is usable
    CHECK(seen.insert(reinterpret_cast<std::uintptr_t>(r)).second);
    rings.push_back(r);
  }
  // No two blocks overlap.
  std::uintptr_t last = 0;
  for (std::uintptr_t a : seen) {
    CHECK((last == 0 || a - last >= detail::k_small_ring_bytes));
    last = a;
  }
  CHECK(detail::small_ring_pool_bytes() >= before + 2000 * detail::k_small_ring_bytes);
  // Freed in another order than allocated: a freed block is handed out again.
  for (std::size_t i = 0; i < rings.size(); i += 2) detail::free_small_ring(rings[i]);
  void* again = detail::allocate_small_ring();
  CHECK(seen.count(reinterpret_cast<std::uintptr_t>(again)) == 1);
  detail::free_small_ring(again);
  for (std::size_t i = 1; i < rings.size(); i += 2) detail::free_small_ring(rings[i]);
  // At most one empty slab stays mapped.
  CHECK(detail::small_ring_pool_bytes() <= before + 64 * 1024);
}

TEST_CASE("small_ring_pool: an OutboundQueue's first ring comes from it and goes back when freed") {
  const std::size_t before = detail::small_ring_pool_bytes();
  std::vector<OutboundQueue> queues(600);
  OutboundQueue::Limits limits;
  for (auto& q : queues) {
    CHECK(q.push_reply(Frame::make(Opcode::text, "ok"), limits));
    CHECK(q.capacity() == 8);
  }
  CHECK(detail::small_ring_pool_bytes() > before);
  // Growing past the first ring leaves the pool; shrinking back returns to it.
  for (int i = 0; i < 20; ++i) queues[0].push_control(Frame::make(Opcode::text, "more"));
  CHECK(queues[0].capacity() == 32);
  queues[0].consume(queues[0].bytes() - queues[0].unwritten(queues[0].frames() - 1).size());  // one frame left
  queues[0].compact();
  CHECK(queues[0].capacity() == 8);
  CHECK(queues[0].frames() == 1);
  for (auto& q : queues) {
    q.consume(q.bytes());
    q.shrink_if_empty();
    CHECK(q.capacity() == 0);
  }
  CHECK(detail::small_ring_pool_bytes() <= before + 64 * 1024);
}

// fanout/detail/gather.hpp — a session's queue as an iovec array, for one gather-write (sendmsg).
#pragma once

#include <sys/uio.h>

#include <cstddef>

#include "fanout/outbound_queue.hpp"

namespace fanout::detail {

/// Fills up to `max_iov` iovecs, at most about `max_bytes`, from the queue's head. Returns how many.
inline std::size_t gather(const OutboundQueue& q, iovec* out, std::size_t max_iov, std::size_t max_bytes) noexcept {
  std::size_t n = 0, total = 0;
  for (; n < q.frames() && n < max_iov && total < max_bytes; ++n) {
    const auto b = q.unwritten(n);
    out[n].iov_base = const_cast<std::byte*>(b.data());
    out[n].iov_len = b.size();
    total += b.size();
  }
  return n;
}

}  // namespace fanout::detail

#include "fanout/detail/queue_memory.hpp"

namespace fanout::detail {

QueueMemory& queue_memory() noexcept {
  static QueueMemory memory;  // constant-initialised: usable from any static constructor
  return memory;
}

}  // namespace fanout::detail

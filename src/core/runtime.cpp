#include "fanout/runtime.hpp"

#include <algorithm>
#include <stdexcept>

#include <asio/executor_work_guard.hpp>

#include "fanout/detail/shard.hpp"

namespace fanout {

namespace {
constexpr std::size_t k_max_shards = 64;  // a topic's shard set is one 64-bit mask
}

Runtime::Runtime() : Runtime(Options{}) {}

Runtime::Runtime(Options options) {
  unsigned n = options.shards ? options.shards : std::max(1u, std::thread::hardware_concurrency());
  if (n > k_max_shards) throw std::invalid_argument("fanout: at most 64 shards");
  for (unsigned i = 0; i < n; ++i) {
    owned_.push_back(std::make_unique<asio::io_context>(1));  // concurrency hint 1: one thread, no locking
    shards_.push_back(std::make_unique<detail::Shard>(*owned_.back(), i));
  }
}

Runtime::Runtime(std::span<asio::io_context* const> contexts) {
  if (contexts.empty() || contexts.size() > k_max_shards)
    throw std::invalid_argument("fanout: 1 to 64 io_contexts expected");
  for (std::size_t i = 0; i < contexts.size(); ++i) shards_.push_back(std::make_unique<detail::Shard>(*contexts[i], i));
}

Runtime::~Runtime() { stop(); }

asio::io_context& Runtime::context(std::size_t shard) noexcept { return shards_[shard]->context(); }

void Runtime::start() {
  if (running_) return;
  running_ = true;
  for (auto& ioc : owned_) {
    threads_.emplace_back([ioc = ioc.get()] {
      auto guard = asio::make_work_guard(*ioc);
      ioc->run();
    });
  }
}

void Runtime::stop(std::chrono::milliseconds drain) {
  if (!running_) return;
  std::vector<Drainable*> drainables;
  {
    std::lock_guard lock(mutex_);
    drainables = drainables_;
  }
  for (auto* d : drainables) d->begin_drain();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  for (;;) {
    std::size_t open = 0;
    for (auto* d : drainables) open += d->open_connections();
    if (open == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto* d : drainables) d->force_close();
  for (auto& ioc : owned_) ioc->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& ioc : owned_) ioc->restart();
  running_ = false;
}

void Runtime::add_drainable(Drainable* d) {
  std::lock_guard lock(mutex_);
  drainables_.push_back(d);
}

void Runtime::remove_drainable(Drainable* d) {
  std::lock_guard lock(mutex_);
  std::erase(drainables_, d);
}

}  // namespace fanout

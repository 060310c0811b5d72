#include "fanout/runtime.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <asio/executor_work_guard.hpp>

#include "fanout/detail/loop.hpp"
#include "fanout/detail/shard.hpp"

namespace fanout {

namespace {
constexpr std::size_t k_max_shards = 64;  // a topic's shard set is one 64-bit mask
}

Runtime::Runtime() : Runtime(Options{}) {}

Runtime::Runtime(Options options) {
  // 0 asks for one shard per hardware thread: a bigger machine gets the most we can address.
  const unsigned n =
      options.shards ? options.shards : std::clamp(std::thread::hardware_concurrency(), 1u, unsigned{k_max_shards});
  if (n > k_max_shards) throw std::invalid_argument("fanout: at most 64 shards");
  std::vector<asio::io_context*> contexts;
  for (unsigned i = 0; i < n; ++i) {
    owned_.push_back(std::make_unique<asio::io_context>(1));  // concurrency hint 1: one thread, no locking
    contexts.push_back(owned_.back().get());
  }
  adopt(contexts);
}

Runtime::Runtime(asio::io_context& context) : Runtime({&context}) {}

Runtime::Runtime(std::initializer_list<asio::io_context*> contexts)
    : Runtime(std::span<asio::io_context* const>(contexts.begin(), contexts.size())) {}

Runtime::Runtime(std::span<asio::io_context* const> contexts) {
  if (contexts.empty() || contexts.size() > k_max_shards)
    throw std::invalid_argument("fanout: 1 to 64 io_contexts expected");
  if (std::find(contexts.begin(), contexts.end(), nullptr) != contexts.end())
    throw std::invalid_argument("fanout: null io_context");
  adopt(contexts);
}

void Runtime::adopt(std::span<asio::io_context* const> contexts) {
  const bool owned = !owned_.empty();
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    loops_.push_back(std::make_unique<detail::Loop>(*contexts[i], owned));
    shards_.push_back(std::make_unique<detail::Shard>(*contexts[i], i));
  }
}

Runtime::~Runtime() {
  if (!owned_.empty() && current_loop()) {
    std::fputs(
        "fanout: a Runtime was destroyed on one of its own shard threads, which it cannot join; "
        "destroy it on the thread that created it\n",
        stderr);
    std::abort();
  }
  stop();
}

asio::io_context& Runtime::context(std::size_t shard) noexcept { return loops_[shard]->context(); }

bool Runtime::running() const noexcept {
  return std::any_of(loops_.begin(), loops_.end(), [](const auto& l) { return l->active(); });
}

detail::Loop* Runtime::current_loop() noexcept {
  for (auto& l : loops_)
    if (l->in_this_thread()) return l.get();
  return nullptr;
}

void Runtime::start() {
  if (!threads_.empty()) return;
  for (std::size_t i = 0; i < owned_.size(); ++i) {
    detail::Loop* loop = loops_[i].get();
    loop->set_running(true);  // before the thread exists: work handed over now will be run
    threads_.emplace_back([loop] {
      auto guard = asio::make_work_guard(loop->context());
      loop->context().run();
      loop->set_running(false);
    });
  }
}

void Runtime::stop(std::chrono::milliseconds drain) {
  std::vector<Drainable*> drainables;
  {
    std::lock_guard lock(mutex_);
    drainables = drainables_;
  }
  detail::Loop* here = current_loop();  // stop() from a handler: that loop must keep turning to drain
  for (auto* d : drainables) d->begin_drain();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  for (;;) {
    std::size_t open = 0;
    for (auto* d : drainables) open += d->open_connections();
    if (open == 0 || std::chrono::steady_clock::now() >= deadline) break;
    if (here)
      here->pause(std::chrono::milliseconds(5));
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto* d : drainables) d->force_close();
  if (threads_.empty()) return;
  for (auto& ioc : owned_) ioc->stop();
  if (here) return;  // cannot join the calling thread: the threads leave run() and the destructor joins them
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (auto& ioc : owned_) ioc->restart();
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

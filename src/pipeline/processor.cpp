#include "fanout/processor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "fanout/detail/error_reporter.hpp"

namespace fanout {

struct Processor::Worker {
  std::size_t index = 0;
  Handler handler;
  mutable std::mutex mutex;
  std::condition_variable has_work;  // a message queued, or stopping
  std::condition_variable has_room;  // a message taken (for Overflow::block)
  std::deque<Message> queue;
  std::size_t queued_bytes = 0;
  bool stopping = false;
  Stats stats{};  // per worker; summed by Processor::stats()
  std::thread thread;
};

Processor::Processor(Options options, HandlerFactory factory, Publish publish)
    : options_(std::move(options)),
      factory_(std::move(factory)),
      publish_(std::move(publish)),
      reporter_(std::make_unique<detail::ErrorReporter>(options_.on_error)) {
  if (options_.workers == 0) throw std::invalid_argument("processor: workers must be at least 1");
  if (options_.max_queued == 0 || options_.max_queued_bytes == 0)
    throw std::invalid_argument("processor: queue limits must be positive");
  if (!factory_ || !publish_) throw std::invalid_argument("processor: needs a handler and a publish function");
  for (std::size_t i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->index = i;
  }
}

Processor::Processor(Options options, Handler handler, Publish publish)
    : Processor(std::move(options),
                handler ? HandlerFactory([handler](std::size_t) { return handler; }) : HandlerFactory{},
                std::move(publish)) {}

Processor::~Processor() { stop(); }

void Processor::start() {
  if (started_) throw std::logic_error("processor: started twice");
  for (auto& w : workers_) {
    w->handler = factory_(w->index);
    if (!w->handler) throw std::invalid_argument(fmt::format("processor: no handler for worker {}", w->index));
  }
  started_ = true;
  for (auto& w : workers_) w->thread = std::thread([this, w = w.get()] { run(*w); });
}

void Processor::stop() {
  for (auto& w : workers_) {
    std::lock_guard lock(w->mutex);
    w->stopping = true;
    w->has_work.notify_all();
    w->has_room.notify_all();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

std::size_t Processor::worker_of(std::string_view topic) const noexcept {
  return std::hash<std::string_view>{}(topic) % workers_.size();
}

bool Processor::submit(Message m) {
  Worker& w = *workers_[worker_of(m.topic)];
  const std::size_t bytes = m.payload.size();
  std::unique_lock lock(w.mutex);
  ++w.stats.submitted;
  if (w.stopping || !started_ || bytes > options_.max_queued_bytes) {
    ++w.stats.dropped;
    return false;
  }
  const auto full = [&] {
    return !w.queue.empty() &&
           (w.queue.size() >= options_.max_queued || w.queued_bytes + bytes > options_.max_queued_bytes);
  };
  if (full()) {
    if (options_.overflow == Overflow::drop_oldest) {
      while (full()) {
        w.queued_bytes -= w.queue.front().payload.size();
        w.queue.pop_front();
        ++w.stats.dropped;
      }
    } else {
      ++w.stats.blocked;
      const auto t0 = std::chrono::steady_clock::now();
      w.has_room.wait(lock, [&] { return !full() || w.stopping; });
      w.stats.blocked_time +=
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
      if (w.stopping) {
        ++w.stats.dropped;
        return false;
      }
    }
  }
  w.queued_bytes += bytes;
  w.queue.push_back(std::move(m));
  if (w.queue.size() == 1) w.has_work.notify_one();
  return true;
}

Processor::Stats Processor::stats() const {
  Stats s;
  const auto now = std::chrono::steady_clock::now();
  for (auto& w : workers_) {
    std::lock_guard lock(w->mutex);
    s.queued += w->queue.size();
    s.queued_bytes += w->queued_bytes;
    s.submitted += w->stats.submitted;
    s.processed += w->stats.processed;
    s.emitted += w->stats.emitted;
    s.dropped += w->stats.dropped;
    s.errors += w->stats.errors;
    s.blocked += w->stats.blocked;
    s.blocked_time += w->stats.blocked_time;
    if (!w->queue.empty())
      s.lag = std::max(s.lag, std::chrono::duration_cast<std::chrono::milliseconds>(now - w->queue.front().received));
  }
  return s;
}

void Processor::run(Worker& w) {
  Output out;
  out.worker_ = w.index;
  for (;;) {
    Message m;
    {
      std::unique_lock lock(w.mutex);
      w.has_work.wait(lock, [&] { return !w.queue.empty() || w.stopping; });
      if (w.queue.empty()) return;  // stopping, and everything queued is done
      m = std::move(w.queue.front());
      w.queue.pop_front();
      w.queued_bytes -= m.payload.size();
      if (options_.overflow == Overflow::block) w.has_room.notify_one();
    }
    out.items_.clear();
    bool ok = true;
    try {
      w.handler(m, out);
    } catch (const std::exception& e) {
      ok = false;
      reporter_->report(fmt::format("processor: handler threw on topic {}: {}", m.topic, e.what()));
    } catch (...) {
      ok = false;
      reporter_->report(fmt::format("processor: handler threw a non-exception on topic {}", m.topic));
    }
    std::uint64_t emitted = 0, errors = ok ? 0 : 1;
    for (const auto& item : out.items_) {  // what was emitted before a throw is published too
      try {
        publish_(item);
        ++emitted;
      } catch (const std::exception& e) {
        ++errors;
        reporter_->report(fmt::format("processor: publish to {} threw: {}", item.topic, e.what()));
      } catch (...) {
        ++errors;
        reporter_->report(fmt::format("processor: publish to {} threw a non-exception", item.topic));
      }
    }
    std::lock_guard lock(w.mutex);
    if (ok) ++w.stats.processed;
    w.stats.emitted += emitted;
    w.stats.errors += errors;
  }
}

}  // namespace fanout

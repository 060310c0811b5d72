#include "fanout/sink.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "fanout/detail/error_reporter.hpp"

namespace fanout {

Sink::Sink(std::unique_ptr<SinkWriter> writer, Options options)
    : writer_(std::move(writer)),
      options_(std::move(options)),
      reporter_(std::make_unique<detail::ErrorReporter>(options_.on_error)) {
  if (!writer_) throw std::invalid_argument("sink: no writer");
  if (options_.max_queued == 0 || options_.max_queued_bytes == 0 || options_.max_batch == 0 ||
      options_.max_batch_bytes == 0)
    throw std::invalid_argument(fmt::format("sink {}: queue and batch limits must be positive", options_.name));
  for (auto& t : options_.topics)
    if (t.empty()) throw std::invalid_argument(fmt::format("sink {}: empty topic in the filter", options_.name));
}

Sink::~Sink() { stop(); }

void Sink::start() {
  std::lock_guard lock(mutex_);
  if (started_) throw std::logic_error("sink: started twice");
  started_ = true;
  thread_ = std::thread([this] { run(); });
}

void Sink::stop() {
  request_stop();
  finish_stop(std::chrono::steady_clock::now() + options_.stop_timeout);
}

void Sink::request_stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  wake_.notify_all();
}

void Sink::finish_stop(std::chrono::steady_clock::time_point deadline) {
  if (!thread_.joinable()) return;
  {
    std::unique_lock lock(mutex_);
    if (!stopped_.wait_until(lock, deadline, [&] { return done_; })) {
      abandon_ = true;  // the thread discards the rest and gives up retrying
      wake_.notify_all();
    }
  }
  {
    std::unique_lock lock(mutex_);
    if (!done_) {
      lock.unlock();
      writer_->interrupt();  // a write blocked in the database
    }
  }
  thread_.join();
}

bool Sink::wants(std::string_view topic) const noexcept {
  if (options_.topics.empty()) return true;
  for (const auto& t : options_.topics) {
    if (t.back() == '*') {
      if (topic.starts_with(std::string_view(t).substr(0, t.size() - 1))) return true;
    } else if (topic == t) {
      return true;
    }
  }
  return false;
}

void Sink::spill_to(Sink& other) {
  if (&other == this || other.spill_) throw std::logic_error("sink: a spill target cannot spill itself");
  std::lock_guard lock(mutex_);
  if (started_) throw std::logic_error("sink: spill_to after start");
  spill_ = &other;
}

bool Sink::offer(const SinkRecordRef& record) noexcept {
  if (!record) return false;
  const std::size_t bytes = bytes_of(*record);
  SinkRecordRef overflow;  // the record a full queue lets go of: spilled, outside our lock
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    ++stats_.offered;
    if (stopping_) {
      ++stats_.dropped;
      return false;
    }
    const auto full = [&] {
      return !queue_.empty() &&
             (queue_.size() >= options_.max_queued || queued_bytes_ + bytes > options_.max_queued_bytes);
    };
    if (full() && options_.overflow == Overflow::drop_newest) {
      overflow = record;
    } else {
      while (full()) {  // drop_oldest
        queued_bytes_ -= bytes_of(*queue_.front());
        if (spill_ && !overflow)
          overflow = std::move(queue_.front());  // one spills; a byte-limit cascade of more drops the rest
        else
          ++stats_.dropped;
        queue_.pop_front();
      }
    }
    if (overflow != record) {
      try {
        queue_.push_back(record);
        queued_bytes_ += bytes;
        queued = true;
        if (queue_.size() == 1) wake_.notify_one();
      } catch (...) {
        ++stats_.dropped;
      }
    }
  }
  if (overflow) {
    const bool spilled = spill_ && spill_->offer(overflow);
    std::lock_guard lock(mutex_);
    ++(spilled ? stats_.spilled : stats_.dropped);
  }
  return queued;
}

Sink::Stats Sink::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.queued = queue_.size();
  s.queued_bytes = queued_bytes_;
  if (!queue_.empty())
    s.lag = std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       std::chrono::system_clock::now() - queue_.front()->time));
  return s;
}

std::chrono::milliseconds Sink::backoff(unsigned attempt) {
  // Full jitter: uniform in [0, min(max, initial * 2^attempt)], at least 1 ms so a loop cannot spin.
  thread_local std::minstd_rand rng{std::random_device{}()};
  const auto cap = options_.retry_initial.count() << std::min(attempt, 20u);
  const auto top = std::max<std::int64_t>(1, std::min<std::int64_t>(options_.retry_max.count(), cap));
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(1, top)(rng));
}

void Sink::run() {
  std::vector<SinkRecordRef> batch;
  batch.reserve(std::min<std::size_t>(options_.max_batch, 4096));
  for (;;) {
    batch.clear();
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (abandon_ || queue_.empty()) {
        stats_.failed += queue_.size();  // left at stop
        queue_.clear();
        queued_bytes_ = 0;
        break;
      }
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        const std::size_t b = bytes_of(*queue_.front());
        if (!batch.empty() && bytes + b > options_.max_batch_bytes) break;
        bytes += b;
        queued_bytes_ -= b;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (unsigned attempt = 0;; ++attempt) {
      WriteResult r;
      try {
        r = writer_->write(batch);
      } catch (const std::exception& e) {
        r = WriteResult::fail(fmt::format("write threw: {}", e.what()));
      } catch (...) {
        r = WriteResult::fail("write threw a non-exception");
      }
      std::unique_lock lock(mutex_);
      if (r.kind == WriteResult::Kind::ok) {
        const std::size_t rejected = std::min(r.rejected, batch.size());
        stats_.written += batch.size() - rejected;
        stats_.failed += rejected;
        ++stats_.batches;
        stats_.last_write_latency = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::system_clock::now() - batch.front()->time);
        if (rejected) {
          lock.unlock();
          reporter_->report(fmt::format("sink {}: {} record(s) rejected: {}", options_.name, rejected, r.error));
        }
        break;
      }
      ++stats_.errors;
      const bool give_up = r.kind == WriteResult::Kind::fail || abandon_ ||
                           (options_.max_attempts && attempt + 1 >= options_.max_attempts);
      if (give_up) stats_.failed += batch.size();
      lock.unlock();
      reporter_->report(fmt::format("sink {}: write of {} record(s) failed{}: {}", options_.name, batch.size(),
                                    give_up ? ", records lost" : ", will retry", r.error));
      if (give_up) break;
      lock.lock();
      wake_.wait_for(lock, backoff(attempt), [&] { return abandon_; });
      if (abandon_) {
        stats_.failed += batch.size();
        break;
      }
      ++stats_.retries;
    }
  }
  writer_->close();
  std::lock_guard lock(mutex_);
  done_ = true;
  stopped_.notify_all();
}

// ---- SinkSet ----

SinkSet::~SinkSet() { stop(); }

Sink& SinkSet::add(std::unique_ptr<SinkWriter> writer, Sink::Options options) {
  sinks_.push_back(std::make_unique<Sink>(std::move(writer), std::move(options)));
  return *sinks_.back();
}

void SinkSet::start() {
  for (auto& s : sinks_) s->start();
}

void SinkSet::stop() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& s : sinks_) s->request_stop();
  for (auto& s : sinks_) s->finish_stop(now + s->options().stop_timeout);
}

void SinkSet::offer(std::string_view topic, std::string_view payload, std::optional<std::uint64_t> seq) noexcept {
  SinkRecordRef record;
  for (auto& s : sinks_) {
    if (s->options().spill_only || !s->wants(topic)) continue;
    if (!record) {
      try {
        record = std::make_shared<const SinkRecord>(
            SinkRecord{std::string(topic), std::string(payload), seq, std::chrono::system_clock::now()});
      } catch (...) {
        return;  // out of memory: nothing can be queued anyway
      }
    }
    s->offer(record);
  }
}

}  // namespace fanout

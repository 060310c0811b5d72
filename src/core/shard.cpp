#include "fanout/detail/shard.hpp"

#include <asio/post.hpp>
#include <algorithm>

#include "fanout/detail/member.hpp"
#include "fanout/detail/throttle.hpp"
#include "fanout/detail/topic.hpp"

namespace fanout::detail {

/// Fetches the fields the walk reads and writes (Member's, one cache line), without touching the object.
void Shard::prefetch_hot(const Member* s) noexcept { __builtin_prefetch(&s->dirty_, 1); }

Shard::Shard(asio::io_context& ioc, std::size_t index)
    : ioc_(ioc),
      index_(index),
      read_buffer_(new std::byte[k_read_buffer_size]),
      write_buffer_(new std::byte[k_write_buffer_size]),
      poller_(ioc) {}

Shard::~Shard() = default;

Throttle& Shard::throttle() {
  if (!throttle_) throttle_ = std::make_unique<Throttle>(*this);
  return *throttle_;
}

void Shard::deliver_pending(Topic& topic) {
  Group& group = topic.groups[index_];
  {
    std::lock_guard lock(topic.mutex);
    batch_.swap(group.pending);
  }
  // Throttled members get the frames at their lane's tick (one reference per lane, not per member).
  if (Lane* lanes = topic.lanes[index_].get()) throttle().offer(lanes, batch_);
  if (group.members.empty()) {  // everyone left since the task was posted, or all are throttled
    batch_.clear();
    return;
  }
  for (auto& p : batch_) group.append(std::move(p));
  batch_.clear();
  walk(topic, group);
}

void Shard::walk(Topic& topic, Group& group) {
  BackpressureCounters c;
  const auto& members = group.members;
  const std::size_t n = members.size();
  // In steady state every member is still flagged from the last publish: a byte read each. The
  // others are fetched a few members ahead (10,000 sessions do not fit in cache).
  for (std::size_t i = 0; i < n; ++i) {
    if (group.flagged[i]) continue;
    if (i + k_prefetch_ahead < n && !group.flagged[i + k_prefetch_ahead]) prefetch_hot(members[i + k_prefetch_ahead]);
    Member& m = *members[i];
    // A member that can write soon pulls then; a blocked or closing one takes the frames now, so its
    // queue and its policy see them as they come.
    if (m.state_ == SessionState::open && !m.waiting_writable_) {
      group.flag(i);
      ++m.pulls_due_;
      if (!m.dirty_) {
        m.dirty_ = true;
        mark_dirty(&m);
      }
    } else {
      m.pull(topic, group, i, c);
    }
  }
  group.bound_log([&](std::size_t i) { members[i]->pull(topic, group, i, c); });
  add_counters(c);
}

void Shard::add_counters(const BackpressureCounters& c) noexcept {
  if (c.dropped_newest) ShardCounters::add(counters.dropped_newest, c.dropped_newest);
  if (c.dropped_oldest) ShardCounters::add(counters.dropped_oldest, c.dropped_oldest);
  if (c.conflated) ShardCounters::add(counters.conflated, c.conflated);
  if (c.disconnected) ShardCounters::add(counters.disconnected_slow, c.disconnected);
  if (c.budget_dropped) ShardCounters::add(counters.budget_dropped, c.budget_dropped);
  if (c.budget_disconnected) ShardCounters::add(counters.budget_disconnected, c.budget_disconnected);
}

void Shard::mark_dirty(Member* s) {
  dirty_.push_back(s);
  if (flush_posted_) return;
  flush_posted_ = true;
  // Runs after the tasks already queued (other publishes): they all go out in the same writes.
  asio::post(ioc_, [this] { flush(); });
}

void Shard::forget(Member* s) noexcept {
  std::replace(dirty_.begin() + static_cast<std::ptrdiff_t>(flush_pos_), dirty_.end(), s,
               static_cast<Member*>(nullptr));
}

void Shard::flush() {
  // By index: a session may become dirty again while this runs and is then flushed in this pass.
  // One vector, kept at its size, so a steady stream of publishes allocates nothing here.
  // At most k_flush_batch sessions per handler: a sweep over 10,000 sockets takes tens of ms, and
  // between batches the loop polls for readiness, so accepts and client reads are not starved.
  // Under steady publishing the pass never ends (written sessions are dirtied again behind the
  // cursor), so the written prefix is dropped here: dirty_ stays within about twice the sessions.
  if (flush_pos_ >= k_flush_batch && 2 * flush_pos_ >= dirty_.size()) {
    dirty_.erase(dirty_.begin(), dirty_.begin() + static_cast<std::ptrdiff_t>(flush_pos_));
    flush_pos_ = 0;
  }
  const std::size_t stop = std::min(dirty_.size(), flush_pos_ + k_flush_batch);
  for (; flush_pos_ < stop; ++flush_pos_) {
    Member* s = dirty_[flush_pos_];
    if (!s) continue;
    s->dirty_ = false;
    s->flush();
  }
  if (flush_pos_ < dirty_.size()) {
    asio::post(ioc_, [this] { flush(); });  // flush_posted_ stays set: new dirt joins this pass
    return;
  }
  dirty_.clear();
  flush_pos_ = 0;
  flush_posted_ = false;
}

}  // namespace fanout::detail

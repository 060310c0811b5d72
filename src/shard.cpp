#include "fanout/detail/shard.hpp"

#include <asio/post.hpp>
#include <algorithm>

#include "fanout/detail/topic.hpp"
#include "fanout/session.hpp"

namespace fanout::detail {

Shard::Shard(asio::io_context& ioc, std::size_t index)
    : ioc_(ioc),
      index_(index),
      read_buffer_(new std::byte[k_read_buffer_size]),
      write_buffer_(new std::byte[k_write_buffer_size]),
      poller_(ioc) {}

void Shard::deliver_pending(Topic& topic) {
  {
    std::lock_guard lock(topic.mutex);
    batch_.swap(topic.groups[index_].pending);
  }
  if (!batch_.empty()) deliver(topic, batch_.data(), batch_.size());
  batch_.clear();
}

void Shard::deliver(Topic& topic, const PendingFrame* frames, std::size_t count) {
  BackpressureCounters c;
  const Group& group = topic.groups[index_];
  const auto& members = group.members;
  const std::size_t n = members.size();
  // Only a frame posted before someone's subscription could have been in their replay already.
  const bool check_joins = frames[0].frame->seq() <= group.newest_join;
  // One atomic add per frame for every member's reference: the frame is shared with other shards,
  // and a locked add per delivery was ~10 % of a shard's CPU at 300 msg/s to 10,000 subscribers.
  // A member that skips the frame gives its reference back. (With envelopes each member takes the
  // reference of the frame it gets.)
  for (std::size_t f = 0; f < count; ++f)
    if (!frames[f].envelope) FrameRef::add_refs(frames[f].frame.get(), static_cast<std::uint32_t>(n));
  // 10,000 sessions and their queues do not fit in cache: fetch each session's hot fields 16
  // members ahead and its queue slot 8 ahead, so deliver() finds both there.
  auto prefetch = [&](std::size_t i) {
    if (i + 2 * k_prefetch_ahead < n) members[i + 2 * k_prefetch_ahead]->prefetch_hot();
    if (i + k_prefetch_ahead < n) members[i + k_prefetch_ahead]->prefetch_queue();
  };
  std::size_t delivered = 0;
  for (std::size_t i = 0; i < n; ++i) {
    prefetch(i);
    Session* s = members[i];
    for (std::size_t f = 0; f < count; ++f) {
      const PendingFrame& p = frames[f];
      const bool skip = check_joins && p.frame->seq() <= group.joined_at[i];  // its replay had this one
      if (!p.envelope) {
        if (skip)
          FrameRef::adopt(p.frame.get());  // gives back the reference taken for it
        else
          s->deliver(FrameRef::adopt(p.frame.get()), &topic, c);
      } else if (!skip) {
        s->deliver(s->envelope_ ? p.envelope : p.frame, &topic, c);
      }
      delivered += skip ? 0 : 1;
    }
  }
  ShardCounters::add(counters.deliveries, delivered);
  add_counters(c);
}

void Shard::add_counters(const BackpressureCounters& c) noexcept {
  if (c.dropped_newest) ShardCounters::add(counters.dropped_newest, c.dropped_newest);
  if (c.dropped_oldest) ShardCounters::add(counters.dropped_oldest, c.dropped_oldest);
  if (c.conflated) ShardCounters::add(counters.conflated, c.conflated);
  if (c.disconnected) ShardCounters::add(counters.disconnected_slow, c.disconnected);
}

void Shard::mark_dirty(Session* s) {
  dirty_.push_back(s);
  if (flush_posted_) return;
  flush_posted_ = true;
  // Runs after the tasks already queued (other publishes): they all go out in the same writes.
  asio::post(ioc_, [this] { flush(); });
}

void Shard::forget(Session* s) noexcept {
  std::replace(dirty_.begin() + static_cast<std::ptrdiff_t>(flush_pos_), dirty_.end(), s,
               static_cast<Session*>(nullptr));
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
    Session* s = dirty_[flush_pos_];
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

#include "fanout/detail/shard.hpp"

#include <asio/post.hpp>
#include <algorithm>

#include "fanout/detail/topic.hpp"
#include "fanout/session.hpp"

namespace fanout::detail {

Shard::Shard(asio::io_context& ioc, std::size_t index)
    : ioc_(ioc), index_(index), read_buffer_(new std::byte[k_read_buffer_size]) {}

void Shard::deliver(Topic& topic, const FrameRef& frame, const FrameRef& envelope) {
  BackpressureCounters c;
  const auto& members = topic.groups[index_].members;
  const std::uint64_t seq = frame->seq();
  std::size_t n = 0;
  for (const Member& m : members) {
    if (seq <= m.after) continue;  // its replay at subscribe time already had this one
    m.session->deliver(m.session->envelope_ ? envelope : frame, &topic, c);
    ++n;
  }
  ShardCounters::add(counters.deliveries, n);
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
  std::replace(dirty_.begin(), dirty_.end(), s, static_cast<Session*>(nullptr));
}

void Shard::flush() {
  // By index: a session may become dirty again while this runs and is then flushed in this pass.
  // One vector, kept at its size, so a steady stream of publishes allocates nothing here.
  flush_posted_ = true;
  for (std::size_t i = 0; i < dirty_.size(); ++i) {
    Session* s = dirty_[i];
    if (!s) continue;
    s->dirty_ = false;
    s->flush();
  }
  dirty_.clear();
  flush_posted_ = false;
}

}  // namespace fanout::detail

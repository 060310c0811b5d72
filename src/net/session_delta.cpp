#include "fanout/detail/session_delta.hpp"

#include <algorithm>

#include "fanout/frame.hpp"

namespace fanout::detail {

namespace {
// More frames than any gather-write takes (IOV_MAX): the choice always covers the whole write.
constexpr std::size_t k_max_frames_per_choice = 1024;
}  // namespace

void SessionDelta::remove_topic(std::uint64_t topic_id) {
  std::erase(topics_, topic_id);
  std::erase_if(written_, [topic_id](const auto& e) { return e.first.topic == topic_id; });
}

bool SessionDelta::has_topic(std::uint64_t topic_id) const noexcept {
  return std::find(topics_.begin(), topics_.end(), topic_id) != topics_.end();
}

std::uint64_t SessionDelta::written_seq(const Key& k) const noexcept {
  for (auto it = batch_.rbegin(); it != batch_.rend(); ++it)
    if (it->first == k) return it->second;
  auto it = written_.find(k);
  return it == written_.end() ? 0 : it->second;
}

void SessionDelta::choose(OutboundQueue& queue, std::size_t max_bytes) {
  batch_.clear();
  std::size_t bytes = 0;
  const std::size_t n = std::min(queue.frames(), k_max_frames_per_choice);
  for (std::size_t i = 0; i < n && bytes < max_bytes; ++i) {
    const Frame* f = queue.frame_at(i);
    if (f->delta_form() && !(i == 0 && queue.head_started())) {
      const Key key{queue.topic_at(i), f->key_hash()};
      const Frame* full = f->full();
      queue.show_delta(i, full->delta() && full->delta_base() == written_seq(key));
      batch_.emplace_back(key, full->seq());
    }
    bytes += queue.unwritten(i).size();
  }
}

void SessionDelta::commit(const OutboundQueue& queue, std::size_t n) {
  for (std::size_t i = 0; i < queue.frames() && n > 0; ++i) {
    const Frame* f = queue.frame_at(i);
    const std::size_t size = queue.unwritten(i).size();
    n -= std::min(n, size);
    if (!f->delta_form()) continue;
    const Key key{queue.topic_at(i), f->key_hash()};
    if (auto it = written_.find(key); it != written_.end())
      it->second = f->seq();
    else if (written_.size() < max_keys_)  // past the bound, new keys get full messages
      written_.emplace(key, f->seq());
    if (f->full() != f && size == f->size()) ++deltas_written;  // counted when its first byte goes
  }
}

}  // namespace fanout::detail

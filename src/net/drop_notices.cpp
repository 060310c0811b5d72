#include "fanout/detail/drop_notices.hpp"

#include <algorithm>

namespace fanout::detail {

void DropNotices::remove_topic(std::uint64_t topic_id) {
  std::erase_if(topics_, [topic_id](const Topic& t) { return t.id == topic_id; });
}

bool DropNotices::has_topic(std::uint64_t topic_id) const noexcept {
  return std::any_of(topics_.begin(), topics_.end(), [topic_id](const Topic& t) { return t.id == topic_id; });
}

void DropNotices::on_drop(std::uint64_t topic_id) noexcept {
  for (auto& t : topics_)
    if (t.id == topic_id) {
      ++t.count;
      pending_ = true;
      return;
    }
}

}  // namespace fanout::detail

// fanout/detail/session_patterns.hpp — a session's wildcard subscriptions: each pattern's record in
// the hub, and the memberships it brought (Session::Subscription::patterns counts them).
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "fanout/detail/pattern_index.hpp"

namespace fanout::detail {

struct Topic;

struct SessionPatterns {
  struct Entry {
    std::shared_ptr<PatternSubscription> sub;
    std::vector<const Topic*> topics;  // joined because of this pattern, at most max_pattern_topics
    bool limit_told = false;           // the client heard once that the pattern met a limit
  };
  std::vector<Entry> entries;  // at most Session::Options::max_patterns

  Entry* find(std::string_view pattern) noexcept {
    for (auto& e : entries)
      if (e.sub->pattern == pattern) return &e;
    return nullptr;
  }
  Entry* find(const PatternSubscription& sub) noexcept {
    for (auto& e : entries)
      if (e.sub.get() == &sub) return &e;
    return nullptr;
  }
};

}  // namespace fanout::detail

// fanout/detail/pattern_index.hpp — the hub's wildcard subscriptions (topic_pattern.hpp) and its topic
// names in order: which subscriptions a new topic matches, and which existing topics a new pattern
// matches. Both are asked when membership changes (a topic is created, a pattern subscribed), never
// per publish: a pattern's matches become ordinary memberships of the topics' groups
// (docs/architecture.md, "Wildcard subscriptions").
//
// Thread safety: none of its own; the Hub guards it with its mutex.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fanout/topic_pattern.hpp"

namespace fanout::detail {

struct Topic;

/// One client's wildcard subscription, on its session's shard.
struct PatternSubscription {
  PatternSubscription(std::string p, std::size_t s) : pattern(std::move(p)), shard(s) {}
  const std::string pattern;
  const std::size_t shard;
  /// Called on `shard`'s thread with each topic created after the subscription that the pattern
  /// matches; the session empties it (on that thread) when the subscription ends, so a notice still
  /// queued then finds nobody.
  std::function<void(const std::shared_ptr<Topic>&)> on_topic;
  std::size_t slot = 0;  // place in its trie node's list (PatternIndex)
  // What the subscribe asked for every topic the pattern brings (set before it is registered).
  std::uint32_t interval_ms = 0;  // "interval_ms": throttled
  bool delta = false;             // "delta":"fossil"
  bool drop_notices = false;      // "drop_notices":true
};

class PatternIndex {
 public:
  PatternIndex();
  ~PatternIndex();
  PatternIndex(const PatternIndex&) = delete;
  PatternIndex& operator=(const PatternIndex&) = delete;

  /// `s->pattern` must be valid (TopicPattern::valid).
  void add(const std::shared_ptr<PatternSubscription>& s);
  void remove(const PatternSubscription& s);
  std::size_t size() const noexcept { return subscriptions_; }

  /// Calls visit(const std::shared_ptr<PatternSubscription>&) for each subscription whose pattern
  /// matches `name`. Cost: a walk of the trie along the name's segments (branching only where
  /// patterns have an inner `*`), then one call per match; the number of patterns that do not match
  /// does not count, nor does the number of subscribers (docs/benchmarks.md, "Issue 15: wildcards").
  template <class Visit>
  void match(std::string_view name, Visit&& visit) const {
    if (subscriptions_ > 0) walk(*root_, name, 0, visit);
  }

  /// The hub's topic names (views of the records' own names, which outlive their entries here).
  void add_topic(std::string_view name) { names_.insert(name); }
  void remove_topic(std::string_view name) { names_.erase(name); }
  /// Calls visit(std::string_view name) for each topic `pattern` matches, in name order, until it
  /// returns false. Cost: the topics that begin with the pattern's literal head (all of them for a
  /// pattern that begins with `*`).
  template <class Visit>
  void topics_matching(std::string_view pattern, Visit&& visit) const {
    const auto head = TopicPattern::literal_head(pattern);
    for (auto it = names_.lower_bound(head); it != names_.end() && it->starts_with(head); ++it)
      if (TopicPattern::matches(pattern, *it) && !visit(*it)) return;
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using List = std::vector<std::shared_ptr<PatternSubscription>>;
  // Edges are tokens: a segment's text, or one separator character.
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, Hash, std::equal_to<>> literal;
    std::unique_ptr<Node> one;  // an inner `*`: any one segment
    List ends;                  // patterns that end here
    List rest;                  // patterns whose final `*` follows here: the rest of the name
    bool empty() const noexcept { return literal.empty() && !one && ends.empty() && rest.empty(); }
  };

  /// The token of `s` starting at `at`: one separator, or a run up to the next separator.
  static std::string_view token(std::string_view s, std::size_t at) noexcept {
    if (TopicPattern::is_separator(s[at])) return s.substr(at, 1);
    std::size_t end = at;
    while (end < s.size() && !TopicPattern::is_separator(s[end])) ++end;
    return s.substr(at, end - at);
  }

  template <class Visit>
  static void walk(const Node& node, std::string_view name, std::size_t at, Visit& visit) {
    if (at == name.size()) {
      for (const auto& s : node.ends) visit(s);
      return;
    }
    for (const auto& s : node.rest) visit(s);
    const auto t = token(name, at);
    if (auto it = node.literal.find(t); it != node.literal.end()) walk(*it->second, name, at + t.size(), visit);
    if (node.one && !TopicPattern::is_separator(t.front())) walk(*node.one, name, at + t.size(), visit);
  }

  std::unique_ptr<Node> root_;
  std::size_t subscriptions_ = 0;
  std::set<std::string_view> names_;
};

}  // namespace fanout::detail

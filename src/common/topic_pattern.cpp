#include "fanout/topic_pattern.hpp"

namespace fanout {

bool TopicPattern::valid(std::string_view p) noexcept {
  if (!is_pattern(p)) return false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '*') continue;
    const bool starts_segment = i == 0 || is_separator(p[i - 1]);
    const bool ends_segment = i + 1 == p.size() || is_separator(p[i + 1]);
    if (!starts_segment || !ends_segment) return false;
  }
  return true;
}

bool TopicPattern::matches(std::string_view p, std::string_view name) noexcept {
  // Literal runs must match exactly; each `*` takes one segment, the final one all that is left.
  std::size_t at = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '*') {
      if (at >= name.size() || name[at] != p[i]) return false;
      ++at;
      continue;
    }
    if (i + 1 == p.size()) return at < name.size();  // the rest, one character at least
    std::size_t end = at;
    while (end < name.size() && !is_separator(name[end])) ++end;
    if (end == at) return false;  // an empty segment
    at = end;
  }
  return at == name.size();
}

}  // namespace fanout

// The valid name nearest to a misspelt one, for "did you mean" hints (config keys, FANOUT_* names).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace relay {

/// Edit distance (insertions, deletions, substitutions), case-insensitive.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// The candidate nearest to `given`, or "" when none is close (more than a third of it differs).
template <class Names>
std::string nearest_name(std::string_view given, const Names& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, given.size() / 3) + 1;
  for (const auto& c : candidates) {
    const auto d = edit_distance(given, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  return best;
}

}  // namespace relay

#include "fanout/auth.hpp"

#include <algorithm>

namespace fanout {

bool Auth::origin_allowed(std::string_view origin) const noexcept {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (const auto& o : allowed_origins) {
    if (o == "*") return true;
    if (o.size() == origin.size() &&
        std::equal(o.begin(), o.end(), origin.begin(), [&](char a, char b) { return lower(a) == lower(b); }))
      return true;
  }
  return false;
}

}  // namespace fanout

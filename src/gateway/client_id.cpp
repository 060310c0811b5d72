#include "fanout/detail/client_id.hpp"

#include <fmt/format.h>

namespace fanout::detail {

bool valid_node_name(std::string_view node) noexcept {
  if (node.empty() || node.size() > 32) return false;
  for (const char c : node)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
      return false;
  return true;
}

std::string format_client_id(std::string_view node, std::uint64_t session_id) {
  return fmt::format("{}-{:x}", node, session_id);
}

std::optional<std::uint64_t> parse_client_id(std::string_view node, std::string_view client_id) noexcept {
  if (client_id.size() <= node.size() + 1 || !client_id.starts_with(node) || client_id[node.size()] != '-')
    return std::nullopt;
  const auto hex = client_id.substr(node.size() + 1);
  // One spelling per id: a leading zero or uppercase would name the same connection twice.
  if (hex.size() > 16 || hex[0] == '0') return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : hex) {
    int d = 0;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

}  // namespace fanout::detail

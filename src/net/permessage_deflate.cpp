#include "fanout/detail/permessage_deflate.hpp"

#include <optional>
#include <utility>
#include <vector>

namespace fanout::detail {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// Splits on `sep` outside quoted strings.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') quoted = !quoted;
    if (s[i] == sep && !quoted) {
      parts.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  parts.push_back(trim(s.substr(start)));
  return parts;
}

/// A window-bits value: 8 to 15, as a token or a quoted string (RFC 7692 7.1.2).
std::optional<int> window_bits(std::string_view v) noexcept {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 2) return std::nullopt;
  int n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (v.size() == 2 && v[0] == '0') return std::nullopt;  // "08": not the grammar's 1*DIGIT without leading zero
  return n >= 8 && n <= 15 ? std::optional<int>(n) : std::nullopt;
}

/// The answer to one permessage-deflate offer's parameters, or nullopt to decline it.
std::optional<std::string> answer(const std::vector<std::string_view>& params) {
  bool server_nct = false, client_nct = false, server_bits = false, client_bits = false;
  for (std::size_t i = 1; i < params.size(); ++i) {
    const auto eq = params[i].find('=');
    const auto name = trim(params[i].substr(0, eq));
    const auto value =
        eq == std::string_view::npos ? std::optional<std::string_view>() : trim(params[i].substr(eq + 1));
    auto once = [](bool& seen) { return !std::exchange(seen, true); };
    if (iequals(name, "server_no_context_takeover") || iequals(name, "client_no_context_takeover")) {
      if (value || !once(iequals(name, "server_no_context_takeover") ? server_nct : client_nct)) return std::nullopt;
    } else if (iequals(name, "server_max_window_bits")) {
      // The server compresses once for all with a window of 15; a client that needs a smaller one
      // is declined rather than given a frame of its own.
      if (!once(server_bits) || !value || window_bits(*value) != 15) return std::nullopt;
    } else if (iequals(name, "client_max_window_bits")) {
      // Any window fits the server's inflater (15), and no context outlives a message.
      if (!once(client_bits) || (value && !window_bits(*value))) return std::nullopt;
    } else {
      return std::nullopt;  // unknown parameter
    }
  }
  std::string out = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  if (server_bits) out += "; server_max_window_bits=15";
  return out;
}

}  // namespace

std::string negotiate_permessage_deflate(std::string_view offers) {
  for (const auto extension : split(offers, ',')) {
    const auto params = split(extension, ';');
    if (!iequals(params.front(), "permessage-deflate")) continue;
    if (auto a = answer(params)) return *a;
  }
  return {};
}

}  // namespace fanout::detail

#include "env.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>

#include "nearest.hpp"

extern char** environ;  // NOLINT: POSIX

namespace relay {
namespace {

std::string upper(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(),
                 [](unsigned char ch) { return static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch); });
  return r;
}

// `value` as a TOML basic string.
std::string quoted(std::string_view value) {
  std::string r = "\"";
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\')
      (r += '\\') += ch;
    else if (c < 0x20 || c == 0x7F)
      r += fmt::format("\\u{:04X}", c);
    else
      r += ch;
  }
  return r + "\"";
}

// One variable applied to a copy of `c`, so a value that fails leaves nothing half-applied.
void apply_one(const std::string& name, const SettableKey& key, std::string_view value, Config& c, bool as_string) {
  Config next = c;
  if (key.section == "server" && (key.key == "listen" || key.key == "listen_tls")) {
    const bool tls = key.key == "listen_tls";
    std::erase_if(next.listen, [tls](const Listen& l) { return l.tls == tls; });
  }
  const std::string text = fmt::format("{}{} = {}\n", key.section.empty() ? "" : fmt::format("[{}]\n", key.section),
                                       key.key, as_string ? quoted(value) : std::string(value));
  apply_toml(text, name, next);
  c = std::move(next);
}

}  // namespace

std::string env_name(const SettableKey& key) {
  return key.section.empty() ? "FANOUT_" + upper(key.key) : "FANOUT_" + upper(key.section) + "_" + upper(key.key);
}

void apply_env(const std::vector<std::string>& env, Config& c) {
  std::map<std::string, SettableKey, std::less<>> known;
  for (const auto& k : settable_keys()) known.emplace(env_name(k), k);
  std::vector<std::string> given;
  for (const auto& entry : env) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos || !entry.starts_with("FANOUT_")) continue;
    given.push_back(entry);
  }
  // Sorted by name: the order of the environment must not decide what wins.
  std::sort(given.begin(), given.end());
  for (const auto& entry : given) {
    const auto eq = entry.find('=');
    const std::string name = entry.substr(0, eq);
    const std::string_view value = std::string_view(entry).substr(eq + 1);
    const auto it = known.find(name);
    if (it == known.end()) {
      std::vector<std::string_view> names;
      for (const auto& [n, _] : known) names.push_back(n);
      const auto hint = nearest_name(name, names);
      c.warnings.push_back(fmt::format("environment: {} is not a setting, ignored{}", name,
                                       hint.empty() ? "" : fmt::format(" (did you mean {}?)", hint)));
      continue;
    }
    // A value that is not TOML (an address, a word) is a string. One with a line break is always a
    // string: it must not be able to add keys of its own.
    const bool multiline = value.find_first_of("\r\n") != std::string_view::npos;
    std::string raw_error;  // the value read as TOML parsed, but did not fit the key
    if (!multiline) {
      try {
        apply_one(name, it->second, value, c, false);
        continue;
      } catch (const std::runtime_error& e) {
        // "NAME:LINE:COLUMN: ..." is a syntax error (then it is a string); anything else is the key's.
        const std::string_view what = e.what();
        const bool syntax = what.size() > name.size() + 1 && what.starts_with(name + ":") &&
                            std::isdigit(static_cast<unsigned char>(what[name.size() + 1]));
        if (!syntax) raw_error = e.what();
      }
    }
    try {
      apply_one(name, it->second, value, c, true);
    } catch (const std::runtime_error& e) {
      // Tell the more useful of the two: a range error of the TOML value (FANOUT_SERVER_SHARDS=100),
      // else what the string was refused for (FANOUT_SERVER_LISTEN=8080: not HOST:PORT).
      const bool type_only =
          raw_error.find("wrong type") != std::string::npos || raw_error.find("must be a string") != std::string::npos;
      throw std::runtime_error(raw_error.empty() || type_only ? e.what() : raw_error);
    }
  }
}

std::vector<std::string> process_environment() {
  std::vector<std::string> r;
  for (char** e = environ; e && *e; ++e) r.emplace_back(*e);
  return r;
}

}  // namespace relay

#include "fanout/detail/memory_limit.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>

namespace fanout::detail {
namespace {

std::optional<std::string> read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// A limit file's value: a byte count, or "max" (v2) / a page-rounded LONG_MAX (v1) for none.
std::optional<std::size_t> read_limit(const std::string& path) {
  const auto line = read_first_line(path);
  if (!line) return std::nullopt;
  std::uint64_t value = 0;
  const auto* end = line->data() + line->size();
  const auto [p, ec] = std::from_chars(line->data(), end, value);
  if (ec != std::errc{} || p == line->data()) return std::nullopt;  // "max", or garbage
  // v1 reports "no limit" as LONG_MAX rounded down to a page; anything past 2^62 is that.
  if (value >= (std::uint64_t{1} << 62)) return std::nullopt;
  return static_cast<std::size_t>(value);
}

void take_min(std::optional<std::size_t>& into, std::optional<std::size_t> v) {
  if (v && (!into || *v < *into)) into = v;
}

// The smallest `file` from `root`/`group` up through each parent to `root` itself.
std::optional<std::size_t> smallest_up_the_tree(const std::string& root, std::string group, const char* file) {
  std::optional<std::size_t> smallest;
  while (!group.empty() && group.back() == '/') group.pop_back();
  for (;;) {
    take_min(smallest, read_limit(root + group + "/" + file));
    if (group.empty()) break;
    group.resize(group.rfind('/') == std::string::npos ? 0 : group.rfind('/'));
  }
  return smallest;
}

}  // namespace

std::optional<std::size_t> cgroup_memory_limit(const CgroupPaths& paths) {
  std::ifstream in(paths.self_cgroup);
  if (!in) return std::nullopt;
  std::optional<std::size_t> smallest;
  std::string line;
  while (std::getline(in, line)) {
    // "hierarchy-id:controllers:path"; the path may itself hold ':'.
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string_view controllers = std::string_view(line).substr(first + 1, second - first - 1);
    const std::string group = line.substr(second + 1);
    if (line.compare(0, first, "0") == 0 && controllers.empty()) {
      take_min(smallest, smallest_up_the_tree(paths.mount, group, "memory.max"));
    } else {
      bool memory = false;
      std::istringstream names{std::string(controllers)};
      for (std::string name; std::getline(names, name, ',');) memory |= name == "memory";
      if (memory) take_min(smallest, smallest_up_the_tree(paths.mount + "/memory", group, "memory.limit_in_bytes"));
    }
  }
  return smallest;
}

std::optional<std::size_t> usable_memory(const CgroupPaths& paths) {
  std::optional<std::size_t> ram;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) ram = static_cast<std::size_t>(pages) * static_cast<std::size_t>(page);
  take_min(ram, cgroup_memory_limit(paths));
  return ram;
}

}  // namespace fanout::detail

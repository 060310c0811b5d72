// fanout/detail/memory_limit.hpp — how much memory this process may use: physical RAM, or less when
// a cgroup (a container, a systemd unit with MemoryMax=) limits it. Defaults sized from RAM alone
// (the queue budget) would let a container be killed by the OOM killer long before they act.
//
// cgroup v2: the process's group from /proc/self/cgroup ("0::/path"), then memory.max of that group
// and of each parent up to the root (the smallest applies; "max" is no limit). cgroup v1: the
// memory controller's group ("N:memory:/path"), memory.limit_in_bytes (huge values are no limit).
// Inside a cgroup namespace the group may be "/" or not mounted where /proc names it: the mount's
// own root file is read then.
//
// Thread safety: pure functions of the files they read.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace fanout::detail {

/// Where the files are: the defaults, or a fake tree for tests.
struct CgroupPaths {
  std::string self_cgroup = "/proc/self/cgroup";
  std::string mount = "/sys/fs/cgroup";  // v2 mounted here; v1 controllers under <mount>/memory
};

/// The smallest cgroup memory limit over this process's groups; nullopt when none is set or readable.
std::optional<std::size_t> cgroup_memory_limit(const CgroupPaths& paths = {});

/// Physical memory (sysconf), or the cgroup limit when that is lower; nullopt when neither is known.
std::optional<std::size_t> usable_memory(const CgroupPaths& paths = {});

}  // namespace fanout::detail

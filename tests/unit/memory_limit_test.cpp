#include <doctest/doctest.h>

#include <fanout/detail/memory_limit.hpp>
#include <fanout/server.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using fanout::detail::cgroup_memory_limit;
using fanout::detail::CgroupPaths;
using fanout::detail::usable_memory;
namespace fs = std::filesystem;

namespace {

// A fake /proc/self/cgroup and cgroup mount in a fresh directory, removed afterwards.
struct FakeCgroup {
  fs::path dir;
  CgroupPaths paths;
  FakeCgroup() {
    std::string templ = (fs::temp_directory_path() / "fanout-cgroup-XXXXXX").string();
    dir = ::mkdtemp(templ.data());
    paths = {.self_cgroup = (dir / "self_cgroup").string(), .mount = (dir / "mount").string()};
  }
  ~FakeCgroup() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void self(const std::string& text) const { std::ofstream(paths.self_cgroup) << text; }
  void file(const std::string& relative, const std::string& text) const {
    const fs::path p = fs::path(paths.mount) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
};

constexpr std::size_t MiB = std::size_t{1} << 20;

}  // namespace

TEST_CASE("cgroup v2: memory.max of the group, the smallest up to the root") {
  FakeCgroup fake;
  fake.self("0::/system.slice/relay.service\n");
  fake.file("system.slice/relay.service/memory.max", "max\n");
  CHECK_FALSE(cgroup_memory_limit(fake.paths));  // "max": no limit
  fake.file("system.slice/memory.max", std::to_string(512 * MiB) + "\n");
  CHECK(cgroup_memory_limit(fake.paths) == 512 * MiB);  // a parent's limit binds the child
  fake.file("system.slice/relay.service/memory.max", std::to_string(300 * MiB) + "\n");
  CHECK(cgroup_memory_limit(fake.paths) == 300 * MiB);
}

TEST_CASE("cgroup v2 inside a namespace: the group is / and the mount's own memory.max counts") {
  FakeCgroup fake;
  fake.self("0::/\n");
  fake.file("memory.max", std::to_string(2048 * MiB));
  CHECK(cgroup_memory_limit(fake.paths) == 2048 * MiB);
}

TEST_CASE("cgroup v1: the memory controller's limit_in_bytes; the huge 'unlimited' value is none") {
  FakeCgroup fake;
  fake.self("9:name=systemd:/\n5:cpu,cpuacct:/x\n4:memory:/process_api/abc\n0::/\n");
  fake.file("memory/process_api/abc/memory.limit_in_bytes", "9223372036854771712\n");
  fake.file("memory/memory.limit_in_bytes", "9223372036854771712\n");
  CHECK_FALSE(cgroup_memory_limit(fake.paths));
  fake.file("memory/process_api/memory.limit_in_bytes", std::to_string(1024 * MiB) + "\n");
  CHECK(cgroup_memory_limit(fake.paths) == 1024 * MiB);
}

TEST_CASE("no cgroup files, or garbage in them: no limit, and RAM is what is usable") {
  FakeCgroup fake;
  CHECK_FALSE(cgroup_memory_limit(fake.paths));  // no /proc/self/cgroup
  fake.self("garbage\n0::/g\n");
  fake.file("g/memory.max", "lots\n");
  CHECK_FALSE(cgroup_memory_limit(fake.paths));
  const auto ram = usable_memory(fake.paths);
  REQUIRE(ram);
  CHECK(*ram > 64 * MiB);
}

TEST_CASE("usable memory is the cgroup limit when lower than RAM") {
  FakeCgroup fake;
  fake.self("0::/small\n");
  fake.file("small/memory.max", std::to_string(100 * MiB));
  CHECK(usable_memory(fake.paths) == 100 * MiB);
}

TEST_CASE("the default queue budget is at most 256 MiB and a tenth of usable memory") {
  const std::size_t budget = fanout::default_queue_budget();
  CHECK(budget > 0);
  CHECK(budget <= 256 * MiB);
  const auto memory = usable_memory();
  if (memory) CHECK(budget <= *memory / 10 + 1);
}

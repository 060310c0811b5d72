// fanout-bench-publish: what Hub::publish costs on the publishing thread, with and without history,
// keys (the per-recipient part is measured by bench/run over real sockets).
//
//
// Prints one JSON object per case: ns per publish on the caller's thread (median of 5 runs), per
#include <fanout/fanout.hpp>

#include <asio/io_context.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Case {
  const char* name;
  fanout::Hub::History history;
  unsigned keys;  // 0: no key
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t messages = 200'000, bytes = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const auto v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--messages")
      messages = v;
    else if (a == "--bytes")
      bytes = v;
    else {
      fmt::print(stderr, "usage: fanout-bench-publish [--messages N] [--bytes B]\n");
      return 2;
    }
  }
  const std::string payload(bytes, 'x');
  std::vector<std::string> keys;
  for (int k = 0; k < 64; ++k) keys.push_back(fmt::format("INST-{}", k));
  const Case cases[] = {
      {"no history", {.max_messages = 0, .max_bytes = 0, .max_keys = 0}, 0},
      {"history 1024 msgs", {.max_messages = 1024, .max_bytes = 1 << 30, .max_keys = 0}, 0},
      {"history + latest (default)", {}, 0},
      {"history + latest, 64 keys", {}, 64},
  };
  for (const auto& c : cases) {
    std::vector<double> runs;
    for (int run = 0; run < 5; ++run) {
      asio::io_context ioc;
      asio::io_context* contexts[] = {&ioc};
      fanout::Runtime rt{std::span<asio::io_context* const>(contexts)};
      fanout::Hub::Options o;
      o.history = c.history;
      fanout::Hub hub(rt, o);
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < messages; ++i)
        hub.publish("bench", payload, {.key = c.keys ? std::string_view(keys[i % c.keys]) : std::string_view{}});
      const auto t1 = std::chrono::steady_clock::now();
      runs.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(messages));
    }
    fmt::print("{{\"case\":\"{}\",\"bytes\":{},\"messages\":{},\"ns_per_publish\":{:.0f}}}\n", c.name, bytes, messages,
               median(runs));
  }
  return 0;
}

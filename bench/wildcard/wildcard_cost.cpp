// fanout-bench-wildcard: what wildcard subscriptions (topic_pattern.hpp) cost the hub. Patterns are
// consulted when a topic is created, never per publish: this measures both, with no pattern, with
// 1,000 distinct patterns that do not match, and with 1,000 clients on one pattern that matches every
// new topic (one notice per shard then carries the 1,000 subscriptions; the shard's joins are the
// sessions' work, measured by bench/run, not here).
//
// Prints one JSON object per case: ns per topic creation (a publish to a new name) and per publish
// to an existing topic, on the caller's thread, median of 5 runs. docs/benchmarks.md, "Issue 15: wildcards".
#include <fanout/detail/pattern_index.hpp>
#include <fanout/detail/topic.hpp>
#include <fanout/fanout.hpp>

#include <asio/io_context.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Case {
  const char* name;
  std::size_t distinct;  // patterns "x<i>:*:USDT" that never match
  std::size_t own;       // patterns "trades:INST-<i>:*": each new topic matches one of them
  std::size_t matching;  // subscriptions of "trades:*", which matches every topic created
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t topics = 20'000, messages = 200'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const auto v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--topics")
      topics = v;
    else if (a == "--messages")
      messages = v;
    else {
      fmt::print(stderr, "usage: fanout-bench-wildcard [--topics N] [--messages N]\n");
      return 2;
    }
  }
  const std::string payload(200, 'x');
  std::vector<std::string> names;
  for (std::size_t i = 0; i < topics; ++i) names.push_back(fmt::format("trades:INST-{}:USDT", i));
  const Case cases[] = {{"no pattern", 0, 0, 0},
                        {"1,000 patterns, none matching", 1000, 0, 0},
                        {"1,000 patterns, one matching each new topic", 0, 1000, 0},
                        {"1,000 clients on trades:* (all match)", 0, 0, 1000}};
  constexpr std::size_t k_cases = std::size(cases);
  std::vector<double> create[k_cases], publish[k_cases];
  for (int run = 0; run < 5; ++run) {  // the cases interleaved: load drifts alike for each
    for (std::size_t k = 0; k < k_cases; ++k) {
      const Case& c = cases[k];
      asio::io_context ioc;
      asio::io_context* contexts[] = {&ioc};
      fanout::Runtime rt{std::span<asio::io_context* const>(contexts)};
      fanout::Hub hub(rt, {.max_topics = topics + 1, .history = {.max_messages = 0, .max_bytes = 0, .max_keys = 0}});
      std::vector<std::shared_ptr<fanout::detail::PatternSubscription>> subs;
      for (std::size_t i = 0; i < c.distinct; ++i)
        subs.push_back(std::make_shared<fanout::detail::PatternSubscription>(fmt::format("x{}:*:USDT", i), 0));
      for (std::size_t i = 0; i < c.own; ++i)
        subs.push_back(std::make_shared<fanout::detail::PatternSubscription>(fmt::format("trades:INST-{}:*", i), 0));
      for (std::size_t i = 0; i < c.matching; ++i)
        subs.push_back(std::make_shared<fanout::detail::PatternSubscription>("trades:*", 0));
      for (const auto& s : subs) fanout::detail::HubMembers::add_pattern(hub, s, 0);

      auto t0 = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < topics; ++i) {
        hub.publish(names[i], payload);
        if (i % 256 == 255) ioc.poll();  // the notices (their shard's side: nobody to join here)
      }
      ioc.poll();
      auto t1 = std::chrono::steady_clock::now();
      create[k].push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(topics));

      t0 = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < messages; ++i) hub.publish(names[i % 64], payload);
      t1 = std::chrono::steady_clock::now();
      publish[k].push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(messages));
    }
  }
  for (std::size_t k = 0; k < k_cases; ++k)
    fmt::print(R"({{"case":"{}","ns_per_topic_creation":{:.0f},"ns_per_publish":{:.0f}}})"
               "\n",
               cases[k].name, median(create[k]), median(publish[k]));
}

// Wildcard subscriptions: the pattern grammar (TopicPattern), the hub's index of patterns and names
// (detail::PatternIndex), the hub announcing new topics to patterns, and the access rules on patterns.
#include <doctest/doctest.h>

#include <fanout/access_rules.hpp>
#include <fanout/detail/pattern_index.hpp>
#include <fanout/detail/topic.hpp>
#include <fanout/hub.hpp>
#include <fanout/runtime.hpp>
#include <fanout/topic_pattern.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

using fanout::TopicPattern;

TEST_CASE("patterns: what is one, and what is well-formed") {
  CHECK(TopicPattern::is_pattern("trades:*"));
  CHECK_FALSE(TopicPattern::is_pattern("trades:BTC"));
  for (const char* ok : {"*", "trades:*", "trades.*", "trades:*:USDT", "*:BTC", "a.*.c:*", "*:*"})
    CHECK_MESSAGE(TopicPattern::valid(ok), ok);
  for (const char* bad : {"trades:BTC*", "tr*des:x", "**", "trades:*x", "trades", "*a"})
    CHECK_MESSAGE(!TopicPattern::valid(bad), bad);
  CHECK(TopicPattern::literal_head("trades:*:USDT") == "trades:");
  CHECK(TopicPattern::literal_head("*") == "");
}

TEST_CASE("patterns: a final * takes the rest, an inner * one segment, separators match themselves") {
  CHECK(TopicPattern::matches("trades:*", "trades:BTC-USDT"));
  CHECK(TopicPattern::matches("trades:*", "trades:BTC:USDT"));  // the rest, separators included
  CHECK_FALSE(TopicPattern::matches("trades:*", "trades:"));    // one character at least
  CHECK_FALSE(TopicPattern::matches("trades:*", "trades"));
  CHECK_FALSE(TopicPattern::matches("trades:*", "trades.BTC"));  // ':' is not '.'
  CHECK_FALSE(TopicPattern::matches("trades:*", "tickers:BTC"));
  CHECK(TopicPattern::matches("trades:*:USDT", "trades:BTC:USDT"));
  CHECK_FALSE(TopicPattern::matches("trades:*:USDT", "trades:BTC:ETH:USDT"));
  CHECK_FALSE(TopicPattern::matches("trades:*:USDT", "trades::USDT"));
  CHECK_FALSE(TopicPattern::matches("trades:*:USDT", "trades:BTC:USDTX"));
  CHECK(TopicPattern::matches("trades.*.USDT", "trades.BTC.USDT"));
  CHECK(TopicPattern::matches("*:BTC", "trades:BTC"));
  CHECK_FALSE(TopicPattern::matches("*:BTC", "a:trades:BTC"));
  CHECK(TopicPattern::matches("*", "anything:at.all"));
}

namespace {
using fanout::detail::PatternIndex;
using fanout::detail::PatternSubscription;

std::vector<std::string> matched(const PatternIndex& index, std::string_view name) {
  std::vector<std::string> out;
  index.match(name, [&](const std::shared_ptr<PatternSubscription>& s) { out.push_back(s->pattern); });
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("pattern index: a new topic finds exactly the patterns that match it, as TopicPattern says") {
  PatternIndex index;
  const std::vector<std::string> patterns = {"trades:*",  "trades:*:USDT", "trades.*", "*",  "*:BTC",
                                             "tickers:*", "trades:*:*",    "*:*:USDT", "a:*"};
  std::vector<std::shared_ptr<PatternSubscription>> subs;
  for (const auto& p : patterns) {
    subs.push_back(std::make_shared<PatternSubscription>(p, 0));
    index.add(subs.back());
  }
  CHECK(index.size() == patterns.size());
  for (const char* name : {"trades:BTC", "trades:BTC:USDT", "trades.BTC", "tickers:BTC", "x:BTC", "trades:", "a",
                           "a:b:USDT", "trades:BTC:ETH:USDT"}) {
    std::vector<std::string> expected;
    for (const auto& p : patterns)
      if (TopicPattern::matches(p, name)) expected.push_back(p);
    std::sort(expected.begin(), expected.end());
    CHECK_MESSAGE(matched(index, name) == expected, name);
  }
  // Removal leaves the others, and prunes: nothing matches once every pattern is gone.
  index.remove(*subs[0]);
  CHECK(matched(index, "trades:BTC") == std::vector<std::string>{"*", "*:BTC"});
  for (std::size_t i = 1; i < subs.size(); ++i) index.remove(*subs[i]);
  CHECK(index.size() == 0);
  CHECK(matched(index, "trades:BTC:USDT").empty());
}

TEST_CASE("pattern index: many clients on one pattern; any of them leaves in O(1), the others stay") {
  PatternIndex index;
  std::vector<std::shared_ptr<PatternSubscription>> subs;
  for (std::size_t i = 0; i < 100; ++i) {
    subs.push_back(std::make_shared<PatternSubscription>("trades:*", i % 4));
    index.add(subs.back());
  }
  for (std::size_t i = 0; i < 100; i += 3) index.remove(*subs[i]);
  std::size_t n = 0;
  index.match("trades:BTC", [&](const auto&) { ++n; });
  CHECK(n == 100 - 34);
  index.remove(*subs[0]);  // twice: nothing happens
  index.match("trades:BTC", [&](const auto&) { --n; });
  CHECK(n == 0);
}

TEST_CASE("pattern index: existing topics a pattern matches, by its literal head") {
  PatternIndex index;
  const std::vector<std::string> names = {"trades:BTC", "trades:ETH",  "trades:BTC:USDT",
                                          "tradesX",    "tickers:BTC", "trades.BTC"};
  for (const auto& n : names) index.add_topic(n);
  std::vector<std::string> seen;
  index.topics_matching("trades:*", [&](std::string_view n) {
    seen.emplace_back(n);
    return true;
  });
  CHECK(seen == std::vector<std::string>{"trades:BTC", "trades:BTC:USDT", "trades:ETH"});
  seen.clear();
  index.topics_matching("*:BTC", [&](std::string_view n) {
    seen.emplace_back(n);
    return seen.size() < 1;  // stops when asked
  });
  CHECK(seen == std::vector<std::string>{"tickers:BTC"});
  index.remove_topic("tickers:BTC");
  seen.clear();
  index.topics_matching("*:BTC", [&](std::string_view n) {
    seen.emplace_back(n);
    return true;
  });
  CHECK(seen == std::vector<std::string>{"trades:BTC"});
}

TEST_CASE("hub: a pattern gets the existing topics it matches, then a notice per topic created later") {
  asio::io_context ioc;
  asio::io_context* contexts[1] = {&ioc};
  fanout::Runtime rt{std::span<asio::io_context* const>(contexts)};
  fanout::Hub hub(rt);
  hub.publish("trades:BTC", "1");
  hub.publish("trades:ETH", "1");
  hub.publish("tickers:BTC", "1");
  auto sub = std::make_shared<PatternSubscription>("trades:*", 0);
  std::vector<std::string> created;
  sub->on_topic = [&](const std::shared_ptr<fanout::detail::Topic>& t) { created.push_back(t->name); };
  auto existing = fanout::detail::HubMembers::add_pattern(hub, sub, 1);
  REQUIRE(existing.size() == 2);  // limit + 1: the caller learns the limit was met
  CHECK(existing[0]->name == "trades:BTC");
  existing = fanout::detail::HubMembers::add_pattern(hub, std::make_shared<PatternSubscription>("x:*", 0), 10);
  CHECK(existing.empty());

  hub.publish("trades:SOL", "1");  // created: announced on the subscriber's shard
  hub.publish("trades:SOL", "2");  // not created: no notice
  hub.publish("tickers:SOL", "1");
  CHECK(hub.declare("trades:ADA"));
  ioc.run();
  CHECK(created == std::vector<std::string>{"trades:SOL", "trades:ADA"});

  // A member that joins the announced topic from the start gets what was published before it joined.
  fanout::detail::Replay replay;
  std::shared_ptr<fanout::detail::Topic> sol;
  auto subs = fanout::detail::HubMembers::add_pattern(hub, std::make_shared<PatternSubscription>("*:SOL", 0), 9);
  REQUIRE(subs.size() == 2);
  sol = subs[1]->name == "trades:SOL" ? subs[1] : subs[0];
  std::size_t index = 0;
  auto* member = reinterpret_cast<fanout::detail::Member*>(alignof(std::max_align_t));
  REQUIRE(fanout::detail::HubMembers::join_matched(hub, sol, 0, member, {.has_since = true, .from_start = true}, index,
                                                   replay) == fanout::detail::SubscribeResult::ok);
  CHECK(replay.seq == 2);
  CHECK(replay.frames.size() == 2);
  CHECK_FALSE(replay.resync);
  fanout::detail::HubMembers::unsubscribe(hub, sol, 0, index, member, false);
  fanout::detail::HubMembers::remove_pattern(hub, *sub);
  hub.publish("trades:XRP", "1");
  created.clear();
  ioc.restart();
  ioc.run();
  CHECK(created.empty());
}

TEST_CASE("access rules on patterns: allowed only when every topic it could match is allowed") {
  using fanout::Access;
  using fanout::AccessRules;
  using V = AccessRules::Verdict;
  fanout::Identity alice;
  alice.user = "alice";
  alice.topics = {"vip.*"};
  AccessRules rules({{"public.*", Access::public_},
                     {"public.secret", Access::deny},  // after public.*: never reached
                     {"user:{sub}.*", Access::user},
                     {"vip.*", Access::claim},
                     {"news", Access::authenticated},
                     {"admin.*", Access::deny}},
                    Access::deny);
  CHECK(rules.check_pattern("public.*", nullptr, nullptr) == V::allow);
  CHECK(rules.check_pattern("public.*:BTC", nullptr, nullptr) == V::allow);
  CHECK(rules.check_pattern("*", nullptr, nullptr) == V::deny);  // admin.* (and the default) too
  CHECK(rules.check_pattern("*", &alice, nullptr) == V::deny);
  CHECK(rules.check_pattern("admin.*", &alice, nullptr) == V::deny);
  CHECK(rules.check_pattern("user:alice.*", &alice, nullptr) == V::allow);  // her own
  CHECK(rules.check_pattern("user:bob.*", &alice, nullptr) == V::deny);
  CHECK(rules.check_pattern("user:*", &alice, nullptr) == V::deny);  // everyone's
  CHECK(rules.check_pattern("user:alice.*", nullptr, nullptr) == V::need_identity);
  CHECK(rules.check_pattern("vip.*", &alice, nullptr) == V::allow);  // her claim covers it
  CHECK(rules.check_pattern("vip.*", nullptr, nullptr) == V::need_identity);
  // A pattern that reaches past the rules falls to the default (deny here).
  CHECK(rules.check_pattern("new*:x", &alice, nullptr) == V::deny);

  AccessRules open({{"private.*", Access::deny}}, Access::public_);
  CHECK(open.check_pattern("trades:*", nullptr, nullptr) == V::allow);
  CHECK(open.check_pattern("*", nullptr, nullptr) == V::deny);  // it could match private.x
  CHECK(open.check_pattern("*:BTC", nullptr, nullptr) == V::deny);
  CHECK(open.check_pattern("pr*", nullptr, nullptr) == V::deny);  // (not valid, but conservative all the same)

  AccessRules tokens({{"paid.*", Access::token}}, Access::public_);
  fanout::Identity token;
  token.topic = "paid.*";
  CHECK(tokens.check_pattern("paid.*", nullptr, nullptr) == V::need_token);
  CHECK(tokens.check_pattern("paid.*", nullptr, &token) == V::allow);
  CHECK(tokens.check_pattern("paid.x.*", nullptr, &token) == V::need_token);  // a token names one pattern
}

// AccessRules: pattern matching, the first matching rule deciding, and each kind of rule.
#include <doctest/doctest.h>

#include <fanout/access_rules.hpp>

using fanout::Access;
using fanout::AccessRules;
using fanout::Identity;
using V = AccessRules::Verdict;

namespace {
Identity user(std::string sub, std::vector<std::string> topics = {}) {
  Identity id;
  id.user = std::move(sub);
  id.topics = std::move(topics);
  return id;
}
Identity subscribe_token(std::string topic, std::string sub = {}) {
  Identity id;
  id.user = std::move(sub);
  id.topic = std::move(topic);
  return id;
}
}  // namespace

TEST_CASE("patterns: exact, prefix with *, and * alone") {
  CHECK(AccessRules::matches("trades", "trades"));
  CHECK_FALSE(AccessRules::matches("trades", "trades.x"));
  CHECK(AccessRules::matches("trades.*", "trades.BTC"));
  CHECK(AccessRules::matches("trades.*", "trades."));
  CHECK_FALSE(AccessRules::matches("trades.*", "trades"));
  CHECK_FALSE(AccessRules::matches("trades.*", "tickers.BTC"));
  CHECK(AccessRules::matches("*", "anything"));
  CHECK_FALSE(AccessRules::matches("user:{sub}", "user:alice"));  // {sub} is for rules, not claims
}

TEST_CASE("bad rules are refused when built") {
  CHECK_THROWS_AS(AccessRules({{"", Access::public_}}), std::invalid_argument);
  CHECK_THROWS_AS(AccessRules({{"a*b", Access::public_}}), std::invalid_argument);
  CHECK_THROWS_AS(AccessRules({{"user:*", Access::user}}), std::invalid_argument);
  CHECK_THROWS_AS(AccessRules({{"user:{sub}:{sub}", Access::user}}), std::invalid_argument);
  CHECK_THROWS_AS(AccessRules({{"user:{sub}*", Access::user}}), std::invalid_argument);
  CHECK_THROWS_AS(AccessRules({{"user:{id}", Access::public_}}), std::invalid_argument);
  CHECK_THROWS_AS(AccessRules({{"user:{sub}", Access::public_}}), std::invalid_argument);
  CHECK_THROWS_AS(AccessRules({}, Access::user), std::invalid_argument);
  CHECK_NOTHROW(AccessRules({{"user:{sub}.*", Access::user}, {"u/{sub}/inbox", Access::user}}));
}

TEST_CASE("the first matching rule decides; no match takes the default") {
  AccessRules rules({{"public.secret", Access::deny}, {"public.*", Access::public_}, {"x.internal", Access::deny}},
                    Access::authenticated);
  const auto alice = user("alice");
  CHECK(rules.check("public.ticker", nullptr, nullptr) == V::allow);
  CHECK(rules.check("public.secret", &alice, nullptr) == V::deny);
  CHECK(rules.check("other", nullptr, nullptr) == V::need_identity);
  CHECK(rules.check("other", &alice, nullptr) == V::allow);
  CHECK(rules.access_for("public.x") == Access::public_);
  CHECK(rules.access_for("zzz") == Access::authenticated);
  CHECK(AccessRules({}, Access::deny).check("x", &alice, nullptr) == V::deny);
  CHECK(AccessRules().check("x", nullptr, nullptr) == V::need_identity);
}

TEST_CASE("user rules: only the owner") {
  AccessRules rules({{"user:{sub}", Access::user}, {"inbox/{sub}/*", Access::user}}, Access::deny);
  const auto alice = user("alice"), bob = user("bob"), nobody = user("");
  CHECK(rules.check("user:alice", &alice, nullptr) == V::allow);
  CHECK(rules.check("user:alice", &bob, nullptr) == V::deny);
  CHECK(rules.check("user:alice", nullptr, nullptr) == V::need_identity);
  CHECK(rules.check("user:", &nobody, nullptr) == V::deny);  // {sub} matches at least one character
  CHECK(rules.check("inbox/alice/mail", &alice, nullptr) == V::allow);
  CHECK(rules.check("inbox/alice/mail", &bob, nullptr) == V::deny);
  CHECK(rules.check("inbox/alice", &alice, nullptr) == V::deny);  // no rule matches: the default
}

TEST_CASE("claim rules: the topics claim lists patterns") {
  AccessRules rules({{"vip.*", Access::claim}}, Access::deny);
  const auto gold = user("g", {"vip.gold.*", "vip.news"}), none = user("n");
  CHECK(rules.check("vip.gold.1", &gold, nullptr) == V::allow);
  CHECK(rules.check("vip.news", &gold, nullptr) == V::allow);
  CHECK(rules.check("vip.silver.1", &gold, nullptr) == V::deny);
  CHECK(rules.check("vip.news", &none, nullptr) == V::deny);
  CHECK(rules.check("vip.news", nullptr, nullptr) == V::need_identity);
}

TEST_CASE("token rules: a subscribe token for exactly this topic, bound to its sub when it has one") {
  AccessRules rules({{"private.*", Access::token}}, Access::deny);
  const auto alice = user("alice");
  const auto for_room = subscribe_token("private.room1"), alices = subscribe_token("private.room1", "alice");
  CHECK(rules.check("private.room1", &alice, nullptr) == V::need_token);
  CHECK(rules.check("private.room1", &alice, &for_room) == V::allow);
  CHECK(rules.check("private.room1", nullptr, &for_room) == V::allow);  // anonymous, with a token for the topic
  CHECK(rules.check("private.room2", &alice, &for_room) == V::need_token);
  CHECK(rules.check("private.room1", &alice, &alices) == V::allow);
  const auto bob = user("bob");
  CHECK(rules.check("private.room1", &bob, &alices) == V::deny);
  CHECK(rules.check("private.room1", nullptr, &alices) == V::deny);
}

TEST_CASE("access names") {
  for (auto a : {Access::public_, Access::authenticated, Access::user, Access::claim, Access::token, Access::deny})
    CHECK(fanout::access_by_name(fanout::to_string(a)) == a);
  CHECK(fanout::access_by_name("everyone") == std::nullopt);
}

#include "fanout/access_rules.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "fanout/topic_pattern.hpp"

namespace fanout {

namespace {
constexpr std::string_view k_sub = "{sub}";

/// Matches `pattern` (a literal, `{sub}` at most once, `*` last) against `topic`; `sub` receives what
/// {sub} matched: the shortest non-empty run up to the literal that follows it.
bool match(std::string_view pattern, std::string_view topic, std::string_view& sub) noexcept {
  const bool star = pattern.ends_with('*');
  if (star) pattern.remove_suffix(1);
  const auto at = pattern.find(k_sub);
  if (at == std::string_view::npos) return star ? topic.starts_with(pattern) : topic == pattern;
  const auto head = pattern.substr(0, at);
  const auto tail = pattern.substr(at + k_sub.size());
  if (!topic.starts_with(head)) return false;
  const auto rest = topic.substr(head.size());
  if (star) {
    const auto end = rest.find(tail, 1);
    if (rest.empty() || end == std::string_view::npos) return false;
    sub = rest.substr(0, end);
    return true;
  }
  if (rest.size() <= tail.size() || !rest.ends_with(tail)) return false;
  sub = rest.substr(0, rest.size() - tail.size());
  return true;
}

void validate(const AccessRules::Rule& r) {
  const std::string_view p = r.pattern;
  auto bad = [&](std::string_view why) { throw std::invalid_argument(fmt::format("access rule '{}': {}", p, why)); };
  if (p.empty()) bad("empty pattern");
  if (const auto star = p.find('*'); star != std::string_view::npos && star != p.size() - 1) bad("'*' only at the end");
  const auto at = p.find(k_sub);
  if (at != std::string_view::npos && p.find(k_sub, at + 1) != std::string_view::npos) bad("{sub} at most once");
  std::string rest(p);
  if (at != std::string_view::npos) rest.erase(at, k_sub.size());
  if (rest.find_first_of("{}") != std::string::npos) bad("braces only as {sub}");
  if (at != std::string_view::npos && p.substr(at + k_sub.size()) == "*")
    bad("{sub} must not be followed by '*' alone");
  if (r.access == Access::user && at == std::string_view::npos) bad("a user rule needs {sub} in its pattern");
  if (r.access != Access::user && at != std::string_view::npos) bad("{sub} belongs in user rules");
}
// ---- Patterns (check_pattern): what a rule's pattern says about every name a wildcard matches.
// `head` is the subscription pattern's literal head: each name it matches starts with it and goes on.

/// The rule's text before its first `{sub}` or `*`: every name it matches starts with it.
std::string_view rule_head(std::string_view rule) noexcept { return rule.substr(0, rule.find_first_of("{*")); }

/// False only when no name the subscription pattern matches can match the rule (over-approximated:
/// an unsure answer is "maybe", which makes the rule's verdict count).
bool may_apply(std::string_view rule, std::string_view pattern) noexcept {
  const bool wild = rule.find_first_of("{*") != std::string_view::npos;
  if (!wild) return TopicPattern::matches(pattern, rule);  // an exact name
  const auto head = TopicPattern::literal_head(pattern);
  const auto rh = rule_head(rule);
  return head.starts_with(rh) || rh.starts_with(head);
}

/// True when every name the subscription pattern matches matches the rule (a prefix rule only).
bool covers(std::string_view rule, std::string_view pattern) noexcept {
  if (!rule.ends_with('*') || rule.find(k_sub) != std::string_view::npos) return false;
  return TopicPattern::literal_head(pattern).starts_with(rule.substr(0, rule.size() - 1));
}

/// A `user` rule (`head{sub}tail*`) covers the pattern with {sub} = `user` for every name: the
/// pattern's head holds head + user + tail, and tail first occurs right after user.
bool covers_as_user(std::string_view rule, std::string_view pattern, std::string_view user) noexcept {
  if (user.empty() || !rule.ends_with('*')) return false;
  const auto at = rule.find(k_sub);
  const auto head = rule.substr(0, at);
  const auto tail = rule.substr(at + k_sub.size(), rule.size() - at - k_sub.size() - 1);
  const std::string owned = std::string(head) + std::string(user) + std::string(tail);
  if (!TopicPattern::literal_head(pattern).starts_with(owned)) return false;
  const std::string_view rest = std::string_view(owned).substr(head.size());
  return rest.find(tail, 1) == user.size();
}
}  // namespace

std::string_view to_string(Access a) noexcept {
  switch (a) {
    case Access::public_: return "public";
    case Access::authenticated: return "authenticated";
    case Access::user: return "user";
    case Access::claim: return "claim";
    case Access::token: return "token";
    case Access::deny: return "deny";
  }
  return "deny";
}

std::optional<Access> access_by_name(std::string_view name) noexcept {
  for (auto a : {Access::public_, Access::authenticated, Access::user, Access::claim, Access::token, Access::deny})
    if (to_string(a) == name) return a;
  return std::nullopt;
}

AccessRules::AccessRules(std::vector<Rule> rules, Access default_access)
    : rules_(std::move(rules)), default_access_(default_access) {
  if (default_access_ == Access::user) throw std::invalid_argument("default access cannot be user (it has no pattern)");
  for (const auto& r : rules_) validate(r);
}

bool AccessRules::matches(std::string_view pattern, std::string_view topic) noexcept {
  std::string_view ignored;
  return pattern.find(k_sub) == std::string_view::npos && match(pattern, topic, ignored);
}

const AccessRules::Rule* AccessRules::find(std::string_view topic, std::string_view& sub) const {
  for (const auto& r : rules_)
    if (match(r.pattern, topic, sub)) return &r;
  return nullptr;
}

Access AccessRules::access_for(std::string_view topic) const {
  std::string_view sub;
  const Rule* r = find(topic, sub);
  return r ? r->access : default_access_;
}

AccessRules::Verdict AccessRules::check(std::string_view topic, const Identity* identity,
                                        const Identity* subscribe_token) const {
  std::string_view sub;
  const Rule* r = find(topic, sub);
  switch (r ? r->access : default_access_) {
    case Access::public_: return Verdict::allow;
    case Access::authenticated: return identity ? Verdict::allow : Verdict::need_identity;
    case Access::user:
      if (!identity) return Verdict::need_identity;
      return !identity->user.empty() && identity->user == sub ? Verdict::allow : Verdict::deny;
    case Access::claim:
      if (!identity) return Verdict::need_identity;
      for (const auto& p : identity->topics)
        if (matches(p, topic)) return Verdict::allow;
      return Verdict::deny;
    case Access::token:
      // The subscribe token names the topic; a `sub` in it binds it to that user's connections.
      if (!subscribe_token || subscribe_token->topic != topic) return Verdict::need_token;
      if (!subscribe_token->user.empty() && (!identity || identity->user != subscribe_token->user))
        return Verdict::deny;
      return Verdict::allow;
    case Access::deny: return Verdict::deny;
  }
  return Verdict::deny;
}

AccessRules::Verdict AccessRules::check_pattern(std::string_view pattern, const Identity* identity,
                                                const Identity* subscribe_token) const {
  // The verdict of one access for all the pattern's names; `rule` is empty for the default access.
  const auto verdict = [&](Access access, std::string_view rule) {
    switch (access) {
      case Access::public_: return Verdict::allow;
      case Access::authenticated: return identity ? Verdict::allow : Verdict::need_identity;
      case Access::user:
        if (!identity) return Verdict::need_identity;
        return covers_as_user(rule, pattern, identity->user) ? Verdict::allow : Verdict::deny;
      case Access::claim:
        if (!identity) return Verdict::need_identity;
        for (const auto& p : identity->topics)
          if (covers(p, pattern)) return Verdict::allow;
        return Verdict::deny;
      case Access::token:
        // A subscribe token issued for the pattern itself.
        if (!subscribe_token || subscribe_token->topic != pattern) return Verdict::need_token;
        if (!subscribe_token->user.empty() && (!identity || identity->user != subscribe_token->user))
          return Verdict::deny;
        return Verdict::allow;
      case Access::deny: return Verdict::deny;
    }
    return Verdict::deny;
  };
  for (const auto& r : rules_) {
    if (!may_apply(r.pattern, pattern)) continue;
    if (const auto v = verdict(r.access, r.pattern); v != Verdict::allow) return v;
    // A user rule that allowed covers the pattern (covers_as_user).
    if (r.access == Access::user || covers(r.pattern, pattern)) return Verdict::allow;
  }
  return verdict(default_access_, {});
}

}  // namespace fanout

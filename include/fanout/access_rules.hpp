// fanout/access_rules.hpp — who may read a topic: rules by topic pattern, checked when a client
// subscribes (WebSocket) or pulls (HTTP snapshot/history), never per delivered message.
//
// Patterns: an exact name (`status`), a prefix ending in `*` (`trades.*`; `*` alone is every topic),
// and `{sub}`, which matches a non-empty run of characters and captures it (`user:{sub}`,
// `user:{sub}.*`). The first rule whose pattern matches decides; no match: `default_access`.
//
//   public         anyone, anonymous connections too
//   authenticated  any verified token
//   user           the pattern's {sub} must be the token's `sub`: only the owner reads user:alice
//   claim          the connection token's `topics` claim lists a pattern matching the topic
//   token          a per-topic subscribe token (a JWT whose `topic` or `channel` claim is the topic,
//                  and whose `sub`, when present, is the connection's) comes with the subscribe
//   deny           nobody
//
//   fanout::AccessRules rules({{"public.*", fanout::Access::public_}, {"user:{sub}", fanout::Access::user},
//                              {"vip.*", fanout::Access::claim}, {"*", fanout::Access::deny}});
//   if (rules.check("user:alice", &identity, nullptr) == fanout::AccessRules::Verdict::allow) ...
//
// Thread safety: immutable after construction; check() from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/export.hpp"

#include "fanout/identity.hpp"

namespace fanout {

enum class Access : std::uint8_t { public_, authenticated, user, claim, token, deny };
FANOUT_API std::string_view to_string(Access a) noexcept;
/// "public", "authenticated", "user", "claim", "token", "deny"; nullopt otherwise.
FANOUT_API std::optional<Access> access_by_name(std::string_view name) noexcept;

class FANOUT_API AccessRules {
 public:
  struct Rule {
    std::string pattern;
    Access access = Access::authenticated;
  };
  enum class Verdict : std::uint8_t {
    allow,
    need_identity,  // the topic needs a verified token and the client has none
    need_token,     // the topic needs a subscribe token, and none (or one for another topic) came
    deny,           // the rule says no for this identity (not the owner, not in `topics`, or deny)
  };

  AccessRules() = default;
  /// Throws std::invalid_argument on a bad pattern (empty, `*` not last, `{sub}` twice, a `user`
  /// rule without `{sub}`).
  explicit AccessRules(std::vector<Rule> rules, Access default_access = Access::authenticated);

  /// `identity`: the connection's (null when anonymous); `subscribe_token`: a verified subscribe
  /// token that came with this request (null when none).
  Verdict check(std::string_view topic, const Identity* identity, const Identity* subscribe_token) const;
  /// The verdict for a wildcard subscription (topic_pattern.hpp), conservative: allow only when the
  /// rules allow every topic the pattern could ever match. The rules are walked in order; each that
  /// may apply to some of those topics must allow them all, until one applies to every one of them
  /// (else the default access must allow too). A `user` rule allows a pattern only inside the
  /// client's own `{sub}` (`user:{sub}.*` allows `user:alice.*` to alice); a `claim` rule needs a
  /// claimed prefix that covers the pattern; a `token` rule needs a subscribe token for the pattern
  /// itself. docs/security.md, "Wildcard subscriptions".
  Verdict check_pattern(std::string_view pattern, const Identity* identity, const Identity* subscribe_token) const;
  /// The rule that decides for `topic` (its access), for messages and logs.
  Access access_for(std::string_view topic) const;

  /// No rules: every topic gets default_access.
  bool empty() const noexcept { return rules_.empty(); }
  const std::vector<Rule>& rules() const noexcept { return rules_; }
  Access default_access() const noexcept { return default_access_; }

  /// True when `pattern` (`*` suffix allowed, no `{sub}`) matches `topic`; the matching of `topics` claims.
  static bool matches(std::string_view pattern, std::string_view topic) noexcept;

 private:
  const Rule* find(std::string_view topic, std::string_view& sub) const;

  std::vector<Rule> rules_;
  Access default_access_ = Access::authenticated;
};

}  // namespace fanout

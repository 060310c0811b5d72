// UserIndex's observer: what Gateway::Options::on_user_presence (and so a cluster) is told.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fanout/detail/user_index.hpp"

TEST_CASE("user index observer: a user's first connection and its last, nothing between") {
  fanout::detail::UserIndex u;
  std::vector<std::string> told;
  u.set_observer([&](std::string_view user, bool online) { told.push_back((online ? "+" : "-") + std::string(user)); });
  u.bind(1, "alice", 0);
  u.bind(2, "alice", 0);  // a second connection: alice was online already
  u.bind(3, "bob", 0);
  u.unbind(1);
  u.bind(3, "carol", 0);  // rebinding: bob's last goes, carol's first comes
  u.unbind(2);
  u.unbind(2);  // not bound any more: nothing
  CHECK(told == std::vector<std::string>{"+alice", "+bob", "-bob", "+carol", "-alice"});
}

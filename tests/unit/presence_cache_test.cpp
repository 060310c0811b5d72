#include "fanout/detail/presence_cache.hpp"

#include <doctest/doctest.h>

using fanout::detail::PresenceCache;

TEST_CASE("presence cache: users of this node and of others, counted once each") {
  PresenceCache c("n1");
  CHECK(c.set_local("alice", true));
  CHECK_FALSE(c.set_local("alice", true));  // already online here
  c.add("n2", "alice");
  c.add("n2", "bob");
  c.add("n1", "carol");  // this node's own echo from Redis: ignored (set_local is the truth)
  CHECK(c.online("alice"));
  CHECK(c.online("bob"));
  CHECK_FALSE(c.online("carol"));
  CHECK(c.user_count() == 2);
  CHECK(c.node_count() == 2);
  CHECK(c.set_local("alice", false));
  CHECK(c.online("alice"));  // still on n2
  c.remove("n2", "alice");
  CHECK_FALSE(c.online("alice"));
  c.drop_node("n2");
  CHECK_FALSE(c.online("bob"));
  CHECK(c.user_count() == 0);
  CHECK(c.node_count() == 0);
}

TEST_CASE("presence cache: a snapshot with the deltas that raced it replayed on top") {
  PresenceCache c("n1");
  c.add("n2", "stale");
  c.add("n3", "gone-node");
  c.begin_resync();
  CHECK(c.resyncing());
  c.add("n2", "late");      // published after the snapshot was taken: not in it
  c.remove("n2", "early");  // in the snapshot, removed after it
  c.add("n2", "x");
  c.remove("n2", "x");       // came and went while reading
  CHECK(c.online("stale"));  // nothing changes until the snapshot arrives
  CHECK(c.end_resync({{"n2", {"early", "kept", "x"}}, {"n1", {"mine"}}}));
  CHECK(c.online("late"));
  CHECK(c.online("kept"));
  CHECK_FALSE(c.online("early"));
  CHECK_FALSE(c.online("x"));
  CHECK_FALSE(c.online("stale"));
  CHECK_FALSE(c.online("gone-node"));  // n3 is not in the snapshot
  CHECK_FALSE(c.online("mine"));       // this node's entries come from set_local only
  CHECK(c.user_count() == 2);
}

TEST_CASE("presence cache: bounded, and an overflowing resync asks to read again") {
  PresenceCache c("n1", 3);
  c.add("n2", "a");
  c.add("n2", "b");
  c.add("n3", "c");
  c.add("n3", "d");  // past the bound: not kept
  c.add("n2", "a");  // already known: not a drop
  CHECK(c.dropped() == 1);
  CHECK_FALSE(c.online("d"));
  c.set_local("mine", true);  // this node's users are never dropped
  CHECK(c.online("mine"));
  c.remove("n2", "a");
  c.add("n3", "d");
  CHECK(c.online("d"));

  c.begin_resync(2);
  c.add("n2", "1");
  c.add("n2", "2");
  c.add("n2", "3");  // the buffer is full
  CHECK_FALSE(c.end_resync({{"n2", {"b"}}}));
  CHECK_FALSE(c.resyncing());
  c.begin_resync();
  c.remove("n2", "1");
  c.add("n4", "z");
  c.abort_resync();  // the read failed: what was known stays, the deltas apply
  CHECK(c.online("b"));
  CHECK(c.online("z"));
}

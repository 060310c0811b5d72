// RedisGatewayLink: command scope (no Redis), then two links over a real redis-server.
#include <doctest/doctest.h>

#include <fanout/redis_gateway_link.hpp>

using Scope = fanout::RedisGatewayLink::Scope;

TEST_CASE("gateway link: a command acts here, everywhere, or on the node of its client") {
  auto scope = [](std::string_view c) { return fanout::RedisGatewayLink::scope(c, "n1"); };
  CHECK(scope(R"({"cmd":"send_to_user","user":"u","data":1})") == Scope::cluster);
  CHECK(scope(R"({"cmd":"publish","topic":"t","data":1})") == Scope::cluster);
  CHECK(scope(R"({"cmd":"send_to_client","client":"n1-1f","data":1})") == Scope::local);
  CHECK(scope(R"({"cmd":"send_to_client","client_id":"n2-1f","data":1})") == Scope::remote);
  CHECK(scope(R"({"cmd":"close_client","client":"nodash"})") == Scope::remote);
  CHECK(scope(R"({"cmd":"online","user":"u"})") == Scope::local);  // a query: answered here
  CHECK(scope(R"({"cmd":"no_such_thing"})") == Scope::local);
  CHECK(scope(R"([{"cmd":"online"},{"cmd":"send_to_all","data":1}])") == Scope::cluster);
  CHECK(scope(R"([{"cmd":"send_to_client","client":"n2-1","data":1}])") == Scope::remote);
  CHECK(scope(R"([{"cmd":"send_to_client","client":"n2-1"},{"cmd":"send_to_client","client":"n3-1"}])") ==
        Scope::cluster);
  CHECK(scope(R"({"cmd":"batch","commands":[{"cmd":"online"},{"cmd":"publish","topic":"t","data":1}]})") ==
        Scope::cluster);
  CHECK(scope(R"({"commands":[{"cmd":"join","client":"n1-2","topic":"t"}]})") == Scope::local);
  CHECK(scope(R"({"cmd":"disconnect","client":"n2-1"})") == Scope::remote);
  CHECK(scope(R"({"cmd":"disconnect","client":"n2-1","user":"u"})") == Scope::cluster);
  CHECK(scope(R"({"cmd":1})") == Scope::invalid);
  CHECK(scope(R"([{"cmd":"online"},"x"])") == Scope::invalid);
  CHECK(scope("not json") == Scope::invalid);
  CHECK(scope("") == Scope::invalid);
}

#if FANOUT_WITH_REDIS
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "redis_test_server.hpp"

using namespace std::chrono_literals;

namespace {

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

struct Node {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{io.get_executor()};
  fanout::RedisGatewayLink link;
  std::mutex m;
  std::vector<std::string> ran, logs;
  std::thread thread;

  Node(std::uint16_t port, std::string name, std::chrono::milliseconds ttl = 5s)
      : link(io, options(port, std::move(name), ttl)) {
    link.set_executor([this](std::string_view c) {
      std::lock_guard l(m);
      ran.emplace_back(c);
      return c.find("bad") != std::string_view::npos ? std::string(R"({"error":"bad"})")
                                                     : std::string(R"({"ok":true})");
    });
    link.set_log_handler([this](std::string_view line) {
      std::lock_guard l(m);
      logs.emplace_back(line);
    });
    link.start();
    thread = std::thread([this] { io.run(); });
  }
  ~Node() { halt(); }
  void halt() {
    if (!thread.joinable()) return;
    io.stop();
    thread.join();
  }
  static fanout::RedisGatewayLink::Options options(std::uint16_t port, std::string name,
                                                   std::chrono::milliseconds ttl) {
    fanout::RedisGatewayLink::Options o;
    o.port = port;
    o.node = std::move(name);
    o.presence_ttl = ttl;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    return o;
  }
  bool logged(std::string_view what) {
    std::lock_guard l(m);
    for (const auto& line : logs)
      if (line.find(what) != std::string::npos) return true;
    return false;
  }
  std::vector<std::string> commands() {
    std::lock_guard l(m);
    return ran;
  }
};

}  // namespace

TEST_CASE("gateway link: commands reach every node; a client's command only its node") {
  fanout_test::RedisServer redis;
  Node a(redis.port(), "a"), b(redis.port(), "b");
  REQUIRE(eventually([&] { return a.link.connected() && b.link.connected(); }));
  REQUIRE(eventually([&] { return redis.integer({"PUBSUB", "NUMSUB", "fanout:cmd"}) == 2; }));
  // The server API on a: runs here and forwards once; b runs it from the stream, a skips its own.
  const std::string to_user = R"({"cmd":"send_to_user","user":"u1","data":{"x":1}})";
  CHECK(a.link.execute(to_user) == R"({"ok":true})");
  REQUIRE(eventually([&] { return b.commands().size() == 1; }));
  CHECK(b.commands()[0] == to_user);
  // Another node's client: forwarded, not run here; the node it names runs it.
  CHECK(a.link.execute(R"({"cmd":"send_to_client","client":"b-1f","data":2})") == R"({"ok":true,"forwarded":true})");
  REQUIRE(eventually([&] { return b.commands().size() == 2; }));
  CHECK(a.commands().size() == 1);
  // Business code: PUBLISH and XADD, both nodes run each once.
  CHECK(redis.integer({"PUBLISH", "fanout:cmd", R"({"cmd":"send_to_all","data":"p"})"}) == 2);
  CHECK(redis.integer({"XADD", "fanout:cmd", "*", "command", R"({"cmd":"send_to_all","data":"x"})"}) == -1);
  REQUIRE(eventually([&] { return a.commands().size() == 3 && b.commands().size() == 4; }));
  // Garbage is counted and ignored.
  redis.integer({"PUBLISH", "fanout:cmd", "not json"});
  redis.integer({"PUBLISH", "fanout:cmd", std::string(2 << 20, '{')});
  redis.integer({"XADD", "fanout:cmd", "*", "nocommand", "x"});
  redis.integer({"PUBLISH", "fanout:cmd", R"({"cmd":"bad"})"});
  CHECK(eventually([&] { return a.link.stats().malformed == 3 && a.link.stats().failed == 1; }));
  CHECK(a.link.stats().forwarded == 2);
  CHECK(b.link.stats().other_node == 0);
  CHECK(a.link.stats().other_node == 0);  // its own forward is skipped before routing
}

TEST_CASE("gateway link: presence of every node, deltas, a node leaving and a node dying") {
  fanout_test::RedisServer redis;
  Node a(redis.port(), "a", 300ms);
  a.link.local_user("alice", true);
  Node b(redis.port(), "b", 300ms);
  b.link.local_user("bob", true);
  CHECK(eventually([&] { return a.link.is_online("bob") && b.link.is_online("alice"); }));
  CHECK(a.link.online_count() == 2);
  b.link.local_user("bob2", true);
  CHECK(eventually([&] { return a.link.is_online("bob2"); }));
  b.link.local_user("bob2", false);
  CHECK(eventually([&] { return !a.link.is_online("bob2"); }));
  {
    // A third node that starts later reads everything at once.
    Node c(redis.port(), "c", 300ms);
    CHECK(eventually([&] { return c.link.is_online("alice") && c.link.is_online("bob"); }));
    c.link.local_user("carol", true);
    CHECK(eventually([&] { return a.link.is_online("carol"); }));
    c.halt();  // dies without a word: a's and b's heartbeats remove it after the ttl
  }
  CHECK(eventually([&] { return !a.link.is_online("carol") && !b.link.is_online("carol"); }, 5s));
  // b leaves properly: gone at once.
  std::atomic<bool> stopped{false};
  asio::post(b.io, [&] { b.link.stop([&] { stopped = true; }); });
  REQUIRE(eventually([&] { return stopped.load(); }));
  CHECK(eventually([&] { return !a.link.is_online("bob"); }));
  CHECK(a.link.is_online("alice"));
  CHECK(a.link.stats().resyncs >= 1);
}

TEST_CASE("gateway link: a second live node with the same name is reported") {
  fanout_test::RedisServer redis;
  Node a(redis.port(), "same");
  REQUIRE(eventually([&] { return a.logged("registered"); }));
  CHECK_FALSE(a.logged("WARNING"));
  Node b(redis.port(), "same");
  CHECK(eventually([&] { return b.logged("WARNING: node name same"); }));
}

TEST_CASE("gateway link: a Redis restart loses neither presence nor later commands") {
  fanout_test::RedisServer redis;
  Node a(redis.port(), "a", 1s), b(redis.port(), "b", 1s);
  a.link.local_user("alice", true);
  REQUIRE(eventually([&] { return b.link.is_online("alice"); }));
  redis.stop();
  redis.start();  // empty: no persistence
  REQUIRE(eventually([&] { return a.link.connected() && b.link.connected(); }));
  // a registers its users again on reconnect; b reads them.
  CHECK(eventually([&] { return b.link.is_online("alice") && redis.integer({"SCARD", "fanout:presence:a"}) == 1; }));
  const auto before = b.commands().size();
  a.link.execute(R"({"cmd":"send_to_user","user":"alice","data":"after"})");
  CHECK(eventually([&] { return b.commands().size() == before + 1; }));
  CHECK(redis.integer({"PUBLISH", "fanout:cmd", R"({"cmd":"send_to_all","data":"p"})"}) == 2);
  CHECK(eventually([&] { return b.commands().size() == before + 2; }));
}
#endif

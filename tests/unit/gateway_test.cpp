// Gateway: client ids, the user and topic indexes, and a gateway over a real server (raw sockets).
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>
#include <fanout/gateway.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fanout/detail/client_id.hpp"
#include "fanout/detail/topic_index.hpp"
#include "fanout/detail/user_index.hpp"

using fanout::detail::PresenceChange;

TEST_CASE("client ids: <node>-<hex>, one spelling per connection, other nodes' ids are not ours") {
  using namespace fanout::detail;
  CHECK(format_client_id("n1", 31) == "n1-1f");
  CHECK(format_client_id("edge.2", 0xffffffffffffffffull) == "edge.2-ffffffffffffffff");
  CHECK(parse_client_id("n1", "n1-1f") == 31u);
  CHECK(parse_client_id("n1", "n1-ffffffffffffffff") == 0xffffffffffffffffull);
  CHECK_FALSE(parse_client_id("n1", "n2-1f"));
  CHECK_FALSE(parse_client_id("n1", "n11-1f"));
  CHECK_FALSE(parse_client_id("n1", "n1-"));
  CHECK_FALSE(parse_client_id("n1", "n1-01f"));                // leading zero
  CHECK_FALSE(parse_client_id("n1", "n1-1F"));                 // uppercase
  CHECK_FALSE(parse_client_id("n1", "n1-1ffffffffffffffff"));  // past 64 bits
  CHECK_FALSE(parse_client_id("n1", "n1-1g"));
  CHECK_FALSE(parse_client_id("n1", ""));
  CHECK(valid_node_name("n1"));
  CHECK(valid_node_name("edge_2.eu"));
  CHECK_FALSE(valid_node_name(""));
  CHECK_FALSE(valid_node_name("a-b"));  // '-' separates the node from the id
  CHECK_FALSE(valid_node_name(std::string(33, 'a')));
}

TEST_CASE("user index: a user has many connections, a connection one user, within the per-user limit") {
  fanout::detail::UserIndex u;
  using Bind = fanout::detail::UserIndex::Bind;
  CHECK(u.bind(1, "alice", 2) == Bind::bound);
  CHECK(u.bind(2, "alice", 2) == Bind::bound);
  CHECK(u.bind(3, "alice", 2) == Bind::too_many);
  CHECK(u.user_of(3).empty());
  CHECK(u.bind(1, "alice", 2) == Bind::unchanged);
  CHECK(u.connections("alice") == std::vector<std::uint64_t>{1, 2});
  CHECK(u.bind(2, "bob", 2) == Bind::bound);  // a second bind replaces the first
  CHECK(u.connections("alice") == std::vector<std::uint64_t>{1});
  CHECK(u.user_of(2) == "bob");
  CHECK(u.user_count() == 2);
  CHECK(u.unbind(1) == "alice");
  CHECK(u.connections("alice").empty());
  CHECK(u.user_count() == 1);
  CHECK(u.unbind(1).empty());
  CHECK(u.bind(4, "carol", 0) == Bind::bound);  // 0: no limit
}

TEST_CASE("topic index: presence changes when a user's first connection joins and its last leaves") {
  fanout::detail::TopicIndex t;
  std::vector<PresenceChange> ch;
  const std::string* room = t.join("room", 1, "alice", ch);
  REQUIRE(room);
  CHECK(*room == "room");
  CHECK(t.join("room", 2, "alice", ch) == room);
  CHECK(t.join("room", 3, "", ch));                  // anonymous: a member, not a user
  CHECK(t.join("room", 1, "alice", ch) == nullptr);  // twice: nothing
  REQUIRE(ch.size() == 1);
  CHECK((ch[0].topic == "room" && ch[0].user == "alice" && ch[0].joined));
  CHECK(t.member_count("room") == 3);
  CHECK(t.user_count("room") == 1);
  CHECK(t.users("room", 10) == std::vector<std::pair<std::string, std::size_t>>{{"alice", 2}});
  ch.clear();
  CHECK(t.leave("room", 1, "alice", ch));
  CHECK_FALSE(t.leave("room", 1, "alice", ch));
  CHECK(ch.empty());
  CHECK(t.leave("room", 2, "alice", ch));
  REQUIRE(ch.size() == 1);
  CHECK_FALSE(ch[0].joined);
  ch.clear();
  // A rebind moves presence in every topic the connection is in.
  const std::string* lobby = t.join("lobby", 3, "", ch);
  t.rebind({room, lobby}, "", "bob", ch);
  CHECK(ch.size() == 2);
  CHECK(t.user_count("room") == 1);
  CHECK(t.user_count("lobby") == 1);
  t.rebind({room, lobby}, "bob", "bob", ch);  // no change
  CHECK(ch.size() == 2);
  t.leave("room", 3, "bob", ch);
  t.leave("lobby", 3, "bob", ch);
  CHECK(ch.size() == 4);
  CHECK(t.topic_count() == 0);
}

TEST_CASE("topic index: lists are bounded, watchers are members and at most max_watchers") {
  fanout::detail::TopicIndex t;
  std::vector<PresenceChange> ch;
  for (std::uint64_t i = 1; i <= 20; ++i) t.join("big", i, "u" + std::to_string(i), ch);
  CHECK(t.members("big", 5).size() == 5);
  CHECK(t.users("big", 5).size() == 5);
  CHECK(t.user_count("big") == 20);
  CHECK_FALSE(t.watch("big", 99, 2));  // not a member
  CHECK(t.watch("big", 1, 2));
  CHECK(t.watch("big", 1, 2));  // already
  CHECK(t.watch("big", 2, 2));
  CHECK_FALSE(t.watch("big", 3, 2));
  CHECK(t.watchers("big").size() == 2);
  t.leave("big", 1, "u1", ch);
  CHECK(t.watchers("big") == std::vector<std::uint64_t>{2});
  CHECK(t.watch("big", 3, 2));
}

TEST_CASE("a Session stays 248 bytes: the gateway adds no per-connection field") {
  // Per-connection memory matters (docs/benchmarks.md); a gateway keeps its state in its own maps.
  CHECK(sizeof(fanout::Session) <= 248);
}

namespace {

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/// A raw WebSocket client: upgrade, then read the server's (unmasked, small) text frames.
struct Client {
  int fd = -1;
  std::string buf;

  Client(std::uint16_t port, const std::string& query) : fd(connect_to(port)) {
    const std::string req = "GET /ws?" + query +
                            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
    while (buf.find("\r\n\r\n") == std::string::npos) REQUIRE(fill());
    REQUIRE(buf.starts_with("HTTP/1.1 101"));
    buf.erase(0, buf.find("\r\n\r\n") + 4);
  }
  ~Client() { ::close(fd); }
  bool fill() {
    char tmp[4096];
    const auto n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  /// The next text message ("" when the connection ended or 5 s passed).
  std::string next() {
    for (;;) {
      if (buf.size() >= 2) {
        const auto op = static_cast<unsigned char>(buf[0]) & 0x0f;
        std::size_t len = static_cast<unsigned char>(buf[1]) & 0x7f, at = 2;
        if (len == 126 && buf.size() >= 4) {
          len = (static_cast<unsigned char>(buf[2]) << 8) | static_cast<unsigned char>(buf[3]);
          at = 4;
        }
        if (len < 126 || at == 4) {
          if (buf.size() >= at + len) {
            std::string payload = buf.substr(at, len);
            buf.erase(0, at + len);
            if (op == 0x8) return {};
            if (op == 0x1) return payload;
            continue;  // ping
          }
        }
      }
      if (!fill()) return {};
    }
  }
  /// The next message that contains `needle`.
  std::string next_with(const std::string& needle) {
    for (auto m = next(); !m.empty(); m = next())
      if (m.find(needle) != std::string::npos) return m;
    return {};
  }
};

template <class F>
bool wait_for(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("gateway over a server: registry, users bound at open, addressed sends, groups, close") {
  fanout::Runtime rt({.shards = 2});
  fanout::Hub hub(rt, {.topics = {"room", "other"}});
  fanout::Gateway gw(rt, hub, {.node = "t1", .max_connections_per_user = 2, .max_list = 2});
  fanout::Server::Options o;
  o.port = 0;
  fanout::Server server(rt, hub, o, {.on_open = [&](fanout::Session& s) {
                          s.send(R"({"event":"hello","id":")" + gw.client_id(s) + "\"}");
                        }});
  gw.attach(server);
  rt.start();

  auto id_of = [](Client& c) {
    const auto m = c.next_with("hello");
    const auto at = m.find("\"id\":\"") + 6;
    return m.substr(at, m.find('"', at) - at);
  };
  Client a1(server.port(), "subscribe=room"), a2(server.port(), "subscribe=other"), b(server.port(), "subscribe=room");
  const auto ida1 = id_of(a1), ida2 = id_of(a2), idb = id_of(b);
  CHECK(ida1.starts_with("t1-"));
  REQUIRE(wait_for([&] { return gw.connection_count() == 3; }));

  CHECK(gw.bind_user(ida1, "alice"));
  CHECK(gw.bind_user(ida2, "alice"));
  CHECK(gw.bind_user(idb, "bob"));
  CHECK_FALSE(gw.bind_user("t1-ffffff", "carol"));        // unknown client
  CHECK_FALSE(gw.bind_user(idb, std::string(129, 'x')));  // past max_user_id_bytes
  CHECK_FALSE(gw.bind_user(idb, ""));
  CHECK(gw.user_count() == 2);
  CHECK(gw.is_online("alice"));
  CHECK_FALSE(gw.is_online("carol"));
  CHECK(gw.clients_of_user("alice").size() == 2);

  CHECK(gw.send_to_user("alice", "to-alice") == 2);
  CHECK(a1.next_with("to-") == "to-alice");
  CHECK(a2.next_with("to-") == "to-alice");
  CHECK(gw.send_to_client(idb, "to-bob") == 1);
  CHECK(b.next_with("to-") == "to-bob");       // and not alice's
  CHECK(gw.send_to_client("t2-1", "x") == 0);  // another node's

  CHECK(gw.send_to_all("all-but-b", {idb}) == 2);
  CHECK(gw.send_to_all("all") == 3);
  CHECK(b.next_with("all") == "all");  // all-but-b never reached it
  CHECK(a1.next_with("all") == "all-but-b");

  REQUIRE(wait_for([&] { return gw.topic_user_count("room") == 2; }));
  CHECK(gw.topic_users("room").size() == 2);
  CHECK(gw.topic_clients("room").size() == 2);
  CHECK(gw.join(ida2, "room"));
  REQUIRE(wait_for([&] { return gw.topic_client_count("room") == 3; }));
  CHECK(gw.topic_clients("room").size() == 2);  // max_list
  CHECK(gw.topic_user_count("room") == 2);
  const auto users = gw.topic_users("room");
  REQUIRE(users.size() == 2);
  CHECK((users[0].user == "alice" && users[0].connections == 2));
  CHECK(gw.publish("room", "room-but-a1", {ida1}) == 2);
  CHECK(a2.next_with("room-") == "room-but-a1");
  CHECK(gw.publish("room", "room-all") == 3);
  CHECK(a1.next_with("room-") == "room-all");
  CHECK(gw.leave(ida2, "room"));
  REQUIRE(wait_for([&] { return gw.topic_client_count("room") == 2; }));

  CHECK(gw.close_user("alice") == 2);
  CHECK(a1.next_with("never sent").empty());  // read to the close frame
  CHECK(a2.next_with("never sent").empty());
  REQUIRE(wait_for([&] { return gw.connection_count() == 1 && !gw.is_online("alice"); }));
  CHECK(gw.close_client(idb));
  REQUIRE(wait_for([&] { return gw.connection_count() == 0; }));
  CHECK(gw.user_count() == 0);
  CHECK(gw.stats().sends >= 8);
  rt.stop();
}

TEST_CASE("gateway with on_connect: the request carries the client id; the decision's user and topics are bound") {
  fanout::Runtime rt({.shards = 2});
  fanout::Hub hub(rt);
  fanout::Gateway gw(rt, hub, {.node = "c1"});
  std::mutex m;
  std::vector<std::string> requested;
  fanout::Server::Options o;
  o.port = 0;
  fanout::Server server(
      rt, hub, o,
      {.on_open = [&](fanout::Session& s) { s.send(R"({"event":"hello","id":")" + gw.client_id(s) + "\"}"); },
       .on_connect =
           [&](const fanout::ConnectRequest& r, fanout::ConnectDecide decide) {
             {
               std::lock_guard lock(m);
               requested.push_back(r.client_id);
             }
             decide(fanout::ConnectDecision::accepted("erin", {"room:9"}));
           }});
  gw.attach(server);
  rt.start();
  Client c(server.port(), "x=1");
  const auto hello = c.next_with("hello");
  {
    std::lock_guard lock(m);
    REQUIRE(requested.size() == 1);
    CHECK(hello.find("\"id\":\"" + requested[0] + "\"") != std::string::npos);
  }
  CHECK(gw.is_online("erin"));
  REQUIRE(wait_for([&] { return gw.topic_user_count("room:9") == 1; }));
  CHECK(gw.topic_users("room:9").at(0).user == "erin");
  CHECK(gw.send_to_user("erin", "to-erin") == 1);
  CHECK(c.next_with("to-") == "to-erin");
  rt.stop();
}

TEST_CASE("gateway: past max_connections_per_user the upgrade gets 503 with a Retry-After (capacity)") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Gateway gw(rt, hub, {.node = "u1", .max_connections_per_user = 1});
  fanout::Server::Options o;
  o.port = 0;
  o.retry_after = std::chrono::seconds(6);
  o.retry_jitter = 0;  // exactly retry_after
  fanout::Server server(
      rt, hub, o,
      {.on_open = [&](fanout::Session& s) { s.send(R"({"event":"hello"})"); },
       .on_connect = [](const fanout::ConnectRequest&,
                        fanout::ConnectDecide decide) { decide(fanout::ConnectDecision::accepted("erin", {})); }});
  gw.attach(server);
  rt.start();
  Client first(server.port(), "x=1");
  CHECK_FALSE(first.next_with("hello").empty());
  REQUIRE(wait_for([&] { return gw.clients_of_user("erin").size() == 1; }));
  // The second connection of erin: refused before the upgrade.
  const int fd = connect_to(server.port());
  const std::string req =
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  std::string answer;
  char tmp[4096];
  for (ssize_t n; (n = ::recv(fd, tmp, sizeof tmp, 0)) > 0;) answer.append(tmp, static_cast<std::size_t>(n));
  ::close(fd);
  CHECK(answer.starts_with("HTTP/1.1 503 "));
  CHECK(answer.find("Retry-After: 6\r\n") != std::string::npos);
  CHECK(gw.clients_of_user("erin").size() == 1);
  rt.stop();
}

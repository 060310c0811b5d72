// Server: application HTTP routes beside the WebSocket paths, and the hub's activity observer.
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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

// Sends one request and reads until the server closes.
std::string http_exchange(std::uint16_t port, const std::string& request) {
  const int fd = connect_to(port);
  REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return got;
}

std::string get(std::uint16_t port, const std::string& target, const std::string& method = "GET") {
  return http_exchange(port, method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

template <class F>
void wait_for(F f) {
  for (int i = 0; i < 500 && !f(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

}  // namespace

TEST_CASE("application routes answer GET and HEAD; others get 404/405; a throwing route is a 500") {
  fanout::Runtime rt({.shards = 2});
  fanout::Hub hub(rt);
  fanout::Server::Options o;
  o.port = 0;
  o.http_routes.push_back({"/hello", false, [](const fanout::HttpRequest& req) {
                             return fanout::HttpResponse{.content_type = "application/json",
                                                         .body = "{\"q\":\"" + std::string(req.query()) + "\"}",
                                                         .headers = "X-Test: 1\r\n"};
                           }});
  o.http_routes.push_back({"/things/", true, [](const fanout::HttpRequest& req) {
                             if (req.path() == "/things/bad") throw std::runtime_error("no such thing");
                             return fanout::HttpResponse{.status = 404, .body = std::string(req.path())};
                           }});
  fanout::Server server(rt, hub, o);
  rt.start();

  const auto ok = get(server.port(), "/hello?a=1");
  CHECK(ok.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(ok.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(ok.find("X-Test: 1\r\n") != std::string::npos);
  CHECK(ok.ends_with("\r\n\r\n{\"q\":\"a=1\"}"));

  const auto head = get(server.port(), "/hello?a=1", "HEAD");
  CHECK(head.find("Content-Length: 11\r\n") != std::string::npos);
  CHECK(head.ends_with("\r\n\r\n"));

  CHECK(get(server.port(), "/things/x").starts_with("HTTP/1.1 404 Not Found\r\n"));
  CHECK(get(server.port(), "/things/x").ends_with("/things/x"));
  const auto err = get(server.port(), "/things/bad");
  CHECK(err.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
  CHECK(err.find("no such thing") != std::string::npos);
  CHECK(get(server.port(), "/hello", "POST").starts_with("HTTP/1.1 405 "));
  CHECK(get(server.port(), "/nothing").starts_with("HTTP/1.1 404 "));
  CHECK(get(server.port(), "/healthz").starts_with("HTTP/1.1 200 OK\r\n"));
  rt.stop();
}

TEST_CASE("the activity observer sees a topic's first member join and its last leave") {
  fanout::Runtime rt({.shards = 2});
  // Clients may create topics here: an unpublished one is forgotten with its last member.
  fanout::Hub hub(rt, {.client_topics = {.allow = true}});
  std::mutex m;
  std::vector<std::string> seen;
  hub.set_activity_observer([&](std::string_view topic, bool active) {
    std::lock_guard lock(m);
    seen.push_back(std::string(active ? "+" : "-") + std::string(topic));
  });
  fanout::Server::Options o;
  o.port = 0;
  fanout::Server server(rt, hub, o);
  rt.start();
  auto upgrade = [&](const std::string& topics) {
    const int fd = connect_to(server.port());
    const std::string req = "GET /ws?subscribe=" + topics +
                            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
    return fd;
  };
  const int a = upgrade("t1,t2");
  wait_for([&] { return hub.subscriber_count("t2") == 1; });
  const int b = upgrade("t1");
  wait_for([&] { return hub.subscriber_count("t1") == 2; });
  ::close(a);
  wait_for([&] { return hub.subscriber_count("t1") == 1 && hub.subscriber_count("t2") == 0; });
  ::close(b);
  wait_for([&] { return hub.topic_count() == 0; });
  rt.stop();
  std::lock_guard lock(m);
  // Per topic, activity alternates + then -; t1 stays active until its second member leaves.
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == "+t1");
  CHECK(seen[1] == "+t2");
  CHECK(std::count(seen.begin(), seen.end(), "-t2") == 1);
  CHECK(seen.back() == "-t1");
}

TEST_CASE("on_open chooses a policy per session, and the policy sees the session's data") {
  // Two clients that never read: the first gets disconnect(), the second a policy that drops new
  // frames and notes whose they were.
  struct NoteAndDrop final : fanout::BackpressurePolicy {
    std::mutex m;
    std::vector<std::string> seen;
    std::string_view name() const noexcept override { return "note_and_drop"; }
    Verdict on_overflow(fanout::OutboundQueue&, fanout::FrameRef&, const fanout::OverflowContext& ctx) override {
      std::lock_guard lock(m);
      if (seen.empty() && ctx.session)
        seen.push_back(std::any_cast<std::string>(ctx.session->user_data()) + ":" + std::string(ctx.topic));
      return Verdict::drop;
    }
  };
  auto noting = std::make_shared<NoteAndDrop>();
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  hub.declare("t");
  fanout::Server::Options o;
  o.port = 0;
  o.session.queue = {.max_bytes = 64 * 1024, .max_frames = 1024};
  o.session.policy = fanout::drop_oldest();
  o.session.close_timeout = std::chrono::milliseconds(100);
  int opened = 0;
  fanout::Server::Callbacks cb;
  cb.on_open = [&](fanout::Session& s) {
    if (opened++ == 0) {
      s.set_policy(fanout::disconnect());
      s.user_data() = std::string("internal");
    } else {
      s.set_policy(noting);
      s.user_data() = std::string("browser");
    }
  };
  fanout::Server server(rt, hub, o, cb);
  rt.start();
  auto upgrade = [&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string req =
        "GET /ws?subscribe=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
    return fd;
  };
  const int internal = upgrade();
  wait_for([&] { return hub.subscriber_count("t") == 1; });
  const int browser = upgrade();
  wait_for([&] { return hub.subscriber_count("t") == 2; });
  CHECK(hub.subscriber_count("t") == 2);
  const std::string payload(16 * 1024, 'x');
  for (int i = 0; i < 400; ++i) hub.publish("t", payload);
  wait_for([&] { return server.stats().disconnected_slow == 1 && hub.subscriber_count("t") == 1; });
  const auto stats = server.stats();
  CHECK(stats.disconnected_slow == 1);  // the internal consumer, by its policy
  CHECK(stats.dropped_newest > 0);      // the browser's policy dropped, and it stays
  CHECK(stats.dropped_oldest == 0);     // nobody used Options::session.policy
  CHECK(hub.subscriber_count("t") == 1);
  {
    std::lock_guard lock(noting->m);
    CHECK(noting->seen.size() == 1);
    CHECK((noting->seen.empty() ? "" : noting->seen[0]) == "browser:t");
  }
  ::close(internal);
  ::close(browser);
  rt.stop();
}

TEST_CASE("connection limits: bad settings refused at construction, max_connections derived from the fd limit") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Server::Options bad;
  bad.port = 0;
  bad.trusted_proxies = {"10.0.0.0/33"};
  CHECK_THROWS_AS(fanout::Server(rt, hub, bad), std::invalid_argument);
  bad.trusted_proxies = {};
  bad.limit_exempt = {"not an address"};
  CHECK_THROWS_AS(fanout::Server(rt, hub, bad), std::invalid_argument);

  rlimit rl{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  fanout::Server::Options o;
  o.port = 0;
  fanout::Server derived(rt, hub, o);
  const auto max = derived.stats().max_connections;
  CHECK(max > 0);
  if (rl.rlim_cur != RLIM_INFINITY) {
    CHECK(max < rl.rlim_cur);                           // headroom under the descriptor limit
    CHECK(max >= rl.rlim_cur - rl.rlim_cur / 10 - 64);  // ... of a tenth, or 64
  }
  o.max_connections = 7;
  fanout::Server fixed(rt, hub, o);
  CHECK(fixed.stats().max_connections == 7);
}

TEST_CASE("past max_connections the request gets 503 with a Retry-After in [retry_after/2, retry_after]") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Server::Options o;
  o.port = 0;
  o.max_connections = 1;
  o.retry_after = std::chrono::seconds(4);
  fanout::Server server(rt, hub, o);
  rt.start();
  const int held = connect_to(server.port());  // the one connection allowed, kept open
  wait_for([&] { return server.stats().sessions == 1; });
  const auto answer = get(server.port(), "/healthz");
  CHECK(answer.starts_with("HTTP/1.1 503 "));
  const auto at = answer.find("Retry-After: ");
  REQUIRE(at != std::string::npos);
  const int seconds = std::stoi(answer.substr(at + 13));
  CHECK(seconds >= 2);
  CHECK(seconds <= 4);
  CHECK(server.stats().refused_total == 1);
  ::close(held);
  wait_for([&] { return server.stats().sessions == 0; });
  CHECK(get(server.port(), "/healthz").starts_with("HTTP/1.1 200 "));
  rt.stop();
}

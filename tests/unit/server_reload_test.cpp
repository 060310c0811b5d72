// Server::reload: new limits and access rules for the connections that come, open ones untouched;
// what needs a restart kept; bad options refused with nothing changed.
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

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

std::string get(std::uint16_t port, const std::string& target) {
  const int fd = connect_to(port);
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return got;
}

template <class F>
void wait_for(F f) {
  for (int i = 0; i < 500 && !f(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// True once a request answers with `status` (the shards switch after reload() returns, between turns).
bool answers(std::uint16_t port, const std::string& target, const std::string& status) {
  for (int i = 0; i < 200; ++i) {
    if (get(port, target).starts_with("HTTP/1.1 " + status)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("reload: a higher max_connections admits new clients while the open one stays") {
  fanout::Runtime rt({.shards = 2});
  fanout::Hub hub(rt);
  fanout::Server::Options o;
  o.port = 0;
  o.max_connections = 1;
  fanout::Server server(rt, hub, o);
  rt.start();
  const int held = connect_to(server.port());
  wait_for([&] { return server.stats().sessions == 1; });
  CHECK(get(server.port(), "/healthz").starts_with("HTTP/1.1 503 "));

  auto more = server.options();
  more.max_connections = 10;
  more.port = 1;          // a restart's: kept
  more.paths = {"/new"};  // likewise
  server.reload(more);
  CHECK(server.options().max_connections == 10);
  CHECK(server.options().paths == std::vector<std::string>{"/ws"});
  CHECK(server.options().port == o.port);
  CHECK(server.stats().max_connections == 10);
  CHECK(answers(server.port(), "/healthz", "200"));
  CHECK(server.stats().sessions >= 1);  // the held connection was not closed
  char byte;
  CHECK(::recv(held, &byte, 1, MSG_DONTWAIT) < 0);  // nothing came: not closed (EAGAIN)
  ::close(held);
  rt.stop();
}

TEST_CASE("reload: bad options are refused and the ones in force stay") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Server::Options o;
  o.port = 0;
  o.max_connections_per_ip = 5;
  fanout::Server server(rt, hub, o);
  auto bad = server.options();
  bad.max_connections_per_ip = 1;
  bad.trusted_proxies = {"10.0.0.0/33"};
  CHECK_THROWS_AS(server.reload(bad), std::invalid_argument);
  bad.trusted_proxies = {};
  bad.session.policy = nullptr;
  CHECK_THROWS_AS(server.reload(bad), std::invalid_argument);
  CHECK(server.options().max_connections_per_ip == 5);
  CHECK(server.options().session.policy != nullptr);
}

TEST_CASE("reload: new access rules apply to HTTP pulls; the queue budget follows") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt, {.topics = {"news"}});
  fanout::Server::Options o;
  o.port = 0;
  o.auth.rules = fanout::AccessRules({{"*", fanout::Access::public_}});
  o.queue_budget_bytes = 64 << 20;
  fanout::Server server(rt, hub, o);
  rt.start();
  CHECK(answers(server.port(), "/topics/news/snapshot", "200"));
  CHECK(server.stats().queue_budget_bytes == 64 << 20);

  auto closed = server.options();
  closed.auth.rules = fanout::AccessRules({{"news", fanout::Access::deny}}, fanout::Access::public_);
  closed.queue_budget_bytes = 32 << 20;
  const auto routes = server.options().http_routes.size();
  server.reload(closed);
  CHECK(server.options().http_routes.size() == routes);  // the topic routes replaced, not added
  CHECK(answers(server.port(), "/topics/news/snapshot", "403"));
  CHECK(server.stats().queue_budget_bytes == 32 << 20);
  rt.stop();
}

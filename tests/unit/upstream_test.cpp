// Upstream against a real fanout server on loopback: subscribe, receive, reconnect, staleness.
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>
#include <fanout/upstream.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <fanout/detail/handshake.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

struct Relayed {
  std::mutex m;
  std::vector<std::string> messages;
  std::vector<std::string> events;
  void add(std::string_view s) {
    std::lock_guard l(m);
    messages.emplace_back(s);
  }
  std::size_t count(std::string_view needle) {
    std::lock_guard l(m);
    std::size_t n = 0;
    for (auto& s : messages) n += s.find(needle) != std::string::npos;
    return n;
  }
  bool saw_event(std::string_view needle) {
    std::lock_guard l(m);
    for (auto& e : events)
      if (e.find(needle) != std::string::npos) return true;
    return false;
  }
};

struct Downstream {  // a fanout server standing in for an exchange
  explicit Downstream(std::uint16_t port = 0) {
    fanout::Server::Options o;
    o.port = port;
    server = std::make_unique<fanout::Server>(rt, hub, o);
    rt.start();
  }
  fanout::Runtime rt{fanout::Runtime::Options{.shards = 1}};
  fanout::Hub hub{rt};
  std::unique_ptr<fanout::Server> server;
};

struct ClientLoop {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~ClientLoop() {
    guard.reset();
    io.stop();
    thread.join();
  }
};

}  // namespace

TEST_CASE("parse_ws_url") {
  auto u = fanout::parse_ws_url("wss://ws.okx.com:8443/ws/v5/public?x=1");
  CHECK(u.tls);
  CHECK(u.host == "ws.okx.com");
  CHECK(u.port == "8443");
  CHECK(u.target == "/ws/v5/public?x=1");
  auto v = fanout::parse_ws_url("ws://[::1]/");
  CHECK(v.host == "::1");
  CHECK(v.port == "80");
  CHECK(fanout::parse_ws_url("ws://h").target == "/");
  CHECK_THROWS_AS(fanout::parse_ws_url("http://h/"), std::invalid_argument);
  CHECK_THROWS_AS(fanout::parse_ws_url("ws://:80/"), std::invalid_argument);
  CHECK_THROWS_AS(fanout::parse_ws_url("ws://h:8x/"), std::invalid_argument);
}

TEST_CASE("upstream subscribes, receives, and resubscribes after the server restarts") {
  auto down = std::make_unique<Downstream>();
  const auto port = down->server->port();
  Relayed got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(port) + "/ws"};
  o.subscribe = {R"({"op":"subscribe","args":["ticks"]})"};
  o.heartbeat = fanout::Upstream::Heartbeat::ws_ping;
  o.heartbeat_interval = 100ms;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  fanout::Upstream up(
      loop.io, o, [&](std::string_view m, bool) { got.add(m); },
      [&](const fanout::Upstream::Event& e) {
        std::lock_guard l(got.m);
        got.events.push_back(std::string(fanout::Upstream::to_string(e.state)) + " " + e.reason);
      });
  up.start();
  REQUIRE(eventually([&] { return down->hub.subscriber_count("ticks") == 1; }));
  CHECK(got.count(R"({"event":"subscribe","arg":"ticks","seq":0,)") == 1);
  for (int i = 0; i < 20; ++i) down->hub.publish("ticks", "tick-" + std::to_string(i));
  CHECK(eventually([&] { return got.count("tick-") == 20; }));
  CHECK(up.state() == fanout::Upstream::State::live);

  // The server goes away: the client backs off and retries until one is back on the same port.
  down.reset();
  CHECK(eventually([&] { return up.state() != fanout::Upstream::State::live; }));
  CHECK(eventually([&] { return got.saw_event("backing_off"); }));
  std::this_thread::sleep_for(300ms);
  down = std::make_unique<Downstream>(port);
  REQUIRE(eventually([&] { return down->hub.subscriber_count("ticks") == 1; }));  // resubscribed unasked
  down->hub.publish("ticks", "after-restart");
  CHECK(eventually([&] { return got.count("after-restart") == 1; }));
  CHECK(up.stats().connects >= 2);
  CHECK(eventually([&] { return up.stats().heartbeats_sent > 0; }));
  up.stop();
  CHECK(eventually([&] { return up.state() == fanout::Upstream::State::stopped; }));
}

TEST_CASE("a silent stream triggers the stale timeout and a reconnect") {
  Downstream down;
  Relayed got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(down.server->port()) + "/ws"};
  o.subscribe = {R"({"op":"subscribe","args":["quiet"]})"};
  o.heartbeat = fanout::Upstream::Heartbeat::none;
  o.stale_timeout = 300ms;
  o.backoff_initial = 10ms;
  o.backoff_max = 50ms;
  fanout::Upstream up(
      loop.io, o, [&](std::string_view m, bool) { got.add(m); },
      [&](const fanout::Upstream::Event& e) {
        std::lock_guard l(got.m);
        got.events.push_back(e.reason);
      });
  up.start();
  CHECK(eventually([&] { return got.saw_event("stale"); }));
  CHECK(eventually([&] { return up.stats().connects >= 2; }));
  up.stop();
}

TEST_CASE("endpoints are tried in order: a dead one first, then a live one") {
  Downstream down;
  Relayed got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  // A port that was free a moment ago: connecting to it is refused.
  std::uint16_t dead_port = 0;
  {
    asio::io_context tmp;
    asio::ip::tcp::acceptor a(tmp, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead_port = a.local_endpoint().port();
  }
  o.urls = {"ws://127.0.0.1:" + std::to_string(dead_port) + "/ws",
            "ws://127.0.0.1:" + std::to_string(down.server->port()) + "/ws"};
  o.subscribe = {R"({"op":"subscribe","args":["x"]})"};
  o.backoff_initial = 10ms;
  o.backoff_max = 50ms;
  fanout::Upstream up(loop.io, o, [&](std::string_view m, bool) { got.add(m); });
  up.start();
  CHECK(eventually([&] { return down.hub.subscriber_count("x") == 1; }));
  CHECK(up.stats().failures >= 1);
  CHECK(up.stats().url == o.urls[1]);
  up.stop();
}

TEST_CASE("an upgrade the server refuses is a failure, not a crash") {
  Downstream down;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(down.server->port()) + "/not-served"};
  o.backoff_initial = 10ms;
  o.backoff_max = 20ms;
  std::atomic<bool> refused{false};
  fanout::Upstream up(loop.io, o, {}, [&](const fanout::Upstream::Event& e) {
    if (e.reason.find("404") != std::string::npos) refused = true;
  });
  up.start();
  CHECK(eventually([&] { return refused.load(); }));
  CHECK(up.stats().bad_input >= 1);
  up.stop();
}

// A hand-made server: checks the request's extra header and reads the client's first frames.
TEST_CASE("custom headers are sent, and login goes out before the subscribes, masked") {
  asio::io_context server_io;
  asio::ip::tcp::acceptor acceptor(server_io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  std::string request, frames_text;
  std::vector<std::string> texts;
  std::thread server([&] {
    asio::ip::tcp::socket s(server_io);
    acceptor.accept(s);
    asio::streambuf buf;
    const auto n = asio::read_until(s, buf, "\r\n\r\n");
    request.assign(static_cast<const char*>(buf.data().data()), n);
    buf.consume(n);
    const auto key_at = request.find("Sec-WebSocket-Key: ") + 19;
    const auto key = request.substr(key_at, request.find("\r\n", key_at) - key_at);
    const std::string reply =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        fanout::detail::websocket_accept(key) + "\r\n\r\n";
    asio::write(s, asio::buffer(reply));
    // Two masked text frames of < 126 bytes: 2 header bytes, 4 mask bytes, payload.
    for (int f = 0; f < 2; ++f) {
      while (buf.size() < 2) asio::read(s, buf, asio::transfer_at_least(1));
      const auto* h = static_cast<const unsigned char*>(buf.data().data());
      const bool masked = h[1] & 0x80;
      const std::size_t len = h[1] & 0x7F;
      while (buf.size() < 6 + len) asio::read(s, buf, asio::transfer_at_least(1));
      h = static_cast<const unsigned char*>(buf.data().data());
      std::string text(len, '\0');
      for (std::size_t i = 0; i < len; ++i) text[i] = static_cast<char>(h[6 + i] ^ h[2 + i % 4]);
      texts.push_back((masked ? "" : "UNMASKED:") + text);
      buf.consume(6 + len);
    }
  });
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(port) + "/feed?x=1"};
  o.headers = {{"X-Api-Key", "secret-1"}};
  o.login = R"({"op":"login"})";
  o.subscribe = {R"({"op":"subscribe"})"};
  o.heartbeat = fanout::Upstream::Heartbeat::none;
  o.permessage_deflate = false;
  fanout::Upstream up(loop.io, o, {});
  up.start();
  server.join();
  CHECK(request.starts_with("GET /feed?x=1 HTTP/1.1\r\n"));
  CHECK(request.find("\r\nX-Api-Key: secret-1\r\n") != std::string::npos);
  CHECK(request.find("\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n") != std::string::npos);
  REQUIRE(texts.size() == 2);
  CHECK(texts[0] == R"({"op":"login"})");
  CHECK(texts[1] == R"({"op":"subscribe"})");
  up.stop();
}

// Lifetime: the Upstream may go away whatever the loop is doing, and nothing touches it afterwards.
TEST_CASE("an Upstream destroyed before its loop ever runs: no callback, nothing written after") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::atomic<int> callbacks{0};
  {
    fanout::Upstream::Options o;
    o.urls = {"ws://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/ws"};
    fanout::Upstream up(
        io, o, [&](std::string_view, bool) { ++callbacks; }, [&](const fanout::Upstream::Event&) { ++callbacks; });
    up.start();  // posted: runs, if at all, after the destructor
  }
  io.run();  // the posted start() and teardown run here, against an Upstream that is gone (ASan checks)
  CHECK(callbacks == 0);
  CHECK(io.stopped());  // nothing left pending: no connection was opened
}

TEST_CASE("stop() and destroy with the loop already stopped return, and no callback follows") {
  Downstream down;
  std::atomic<int> events{0};
  asio::io_context io;  // outlives the Upstream; its loop stops first
  auto guard = asio::make_work_guard(io);
  std::thread thread([&] { io.run(); });
  {
    fanout::Upstream::Options o;
    o.urls = {"ws://127.0.0.1:" + std::to_string(down.server->port()) + "/ws"};
    o.subscribe = {R"({"op":"subscribe","args":["s"]})"};
    fanout::Upstream up(io, o, {}, [&](const fanout::Upstream::Event&) { ++events; });
    up.start();
    REQUIRE(eventually([&] { return down.hub.subscriber_count("s") == 1; }));
    io.stop();  // the loop ends while the connection is live
    thread.join();
    up.stop();
  }  // returns without the loop (it used to wait 5 s for it)
  const int seen = events.load();
  CHECK(seen == 2);  // connecting, live; the stop posted above never reports
  io.restart();
  io.poll();  // the posted stop and teardown run against an Upstream that is gone
  CHECK(events.load() == seen);
}

TEST_CASE("an Upstream destroyed inside its own callback, on the loop's thread, does not deadlock") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/ws"};
  std::unique_ptr<fanout::Upstream> up;
  int events = 0;
  up = std::make_unique<fanout::Upstream>(io, o, fanout::Upstream::OnMessage{}, [&](const fanout::Upstream::Event&) {
    ++events;
    up.reset();  // the first event (connecting) destroys its sender
  });
  up->start();
  io.run();  // ends once the abandoned attempt is torn down
  CHECK(up == nullptr);
  CHECK(events == 1);
}

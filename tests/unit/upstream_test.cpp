// Upstream against a real fanout server on loopback: subscribe, receive, reconnect, staleness.
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>
#include <fanout/upstream.hpp>

#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <fanout/detail/websocket_key.hpp>
#include <atomic>
#include <algorithm>
#include <chrono>
#include <condition_variable>
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

/// What an Upstream reported; tests wait on it instead of polling.
struct Watch {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> messages;
  std::vector<fanout::Upstream::Event> events;
  int connects = 0, reconnects = 0, disconnects = 0;
  std::error_code disconnect_error;

  fanout::Upstream::OnMessage on_message() {
    return [this](std::string_view msg, bool) { update([&] { messages.emplace_back(msg); }); };
  }
  fanout::Upstream::OnEvent on_event() {
    return [this](const fanout::Upstream::Event& e) { update([&] { events.push_back(e); }); };
  }
  void hook(fanout::Upstream::Options& o) {
    o.on_connect = [this](const std::string&) { update([&] { ++connects; }); };
    o.on_reconnect = [this](const std::string&) { update([&] { ++reconnects; }); };
    o.on_disconnect = [this](std::error_code ec, std::string_view) {
      update([&] {
        ++disconnects;
        disconnect_error = ec;
      });
    };
  }
  template <class F>
  void update(F f) {
    {
      std::lock_guard l(m);
      f();
    }
    cv.notify_all();
  }
  /// Waits until pred() (called under the lock) holds; false after a generous limit.
  template <class P>
  bool wait(P pred, std::chrono::milliseconds limit = 10s) {
    std::unique_lock l(m);
    return cv.wait_for(l, limit, pred);
  }
  // Call these under the lock (inside wait's predicate) or after the Upstream is gone.
  std::size_t count(std::string_view needle) const {
    std::size_t n = 0;
    for (auto& s : messages) n += s.find(needle) != std::string::npos;
    return n;
  }
  const fanout::Upstream::Event* find(fanout::Upstream::State st, std::error_code ec = {}) const {
    for (auto& e : events)
      if (e.state == st && (!ec || e.error == ec)) return &e;
    return nullptr;
  }
  std::size_t count(fanout::Upstream::State st) const {
    return static_cast<std::size_t>(
        std::count_if(events.begin(), events.end(), [&](auto& e) { return e.state == st; }));
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
  fanout::Hub hub{rt, {.client_topics = {.allow = true}}};  // like an exchange: any channel may be asked for
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
  auto w = fanout::parse_ws_url("ws://bob:p%40ss@[::1]:9000/ws?apiKey=k");
  CHECK(w.userinfo == "bob:p@ss");
  CHECK(w.host == "::1");
  CHECK(w.port == "9000");
  CHECK(w.target == "/ws?apiKey=k");
  CHECK(fanout::parse_ws_url("ws://h/a@b").userinfo.empty());  // '@' in the path is not user info
}

TEST_CASE("upstream subscribes, receives, and resubscribes after the server restarts") {
  using State = fanout::Upstream::State;
  auto down = std::make_unique<Downstream>();
  const auto port = down->server->port();
  Watch got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(port) + "/ws"};
  o.subscribe = {R"({"op":"subscribe","args":["ticks"]})"};
  o.heartbeat = fanout::Upstream::Heartbeat::ws_ping;
  o.heartbeat_interval = 100ms;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  got.hook(o);
  fanout::Upstream up(loop.io, o, got.on_message(), got.on_event());
  up.start();
  const std::string ack = R"({"event":"subscribe","arg":"ticks")";
  REQUIRE(got.wait([&] { return got.count(ack) == 1; }));
  CHECK(down->hub.subscriber_count("ticks") == 1);
  for (int i = 0; i < 20; ++i) down->hub.publish("ticks", "tick-" + std::to_string(i));
  CHECK(got.wait([&] { return got.count("tick-") == 20; }));
  CHECK(up.state() == State::live);

  // The server goes away: the client backs off and retries until one is back on the same port.
  down.reset();
  REQUIRE(got.wait([&] { return got.find(State::backing_off) != nullptr; }));
  CHECK(up.state() != State::live);
  down = std::make_unique<Downstream>(port);
  REQUIRE(got.wait([&] { return got.count(ack) == 2; }));  // resubscribed unasked
  down->hub.publish("ticks", "after-restart");
  CHECK(got.wait([&] { return got.count("after-restart") == 1; }));
  CHECK(up.stats().connects >= 2);
  CHECK(eventually([&] { return up.stats().heartbeats_sent > 0; }));  // no event for a ping sent
  up.stop();
  CHECK(got.wait([&] { return got.find(State::stopped) != nullptr; }));
  CHECK(up.state() == State::stopped);
  std::lock_guard l(got.m);
  CHECK(got.connects == 1);
  CHECK(got.reconnects >= 1);
  CHECK(got.disconnects >= 1);
  // The server said goodbye (close 1001), or the socket went first.
  CHECK(
      (got.disconnect_error == fanout::Errc::upstream_closed || got.disconnect_error == asio::error::connection_reset));
}

TEST_CASE("a silent stream triggers the stale timeout and a reconnect") {
  using State = fanout::Upstream::State;
  Downstream down;
  Watch got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(down.server->port()) + "/ws"};
  o.subscribe = {R"({"op":"subscribe","args":["quiet"]})"};
  o.heartbeat = fanout::Upstream::Heartbeat::none;
  o.stale_timeout = 300ms;
  o.backoff_initial = 10ms;
  o.backoff_max = 50ms;
  fanout::Upstream up(loop.io, o, got.on_message(), got.on_event());
  up.start();
  REQUIRE(got.wait([&] { return got.find(State::backing_off, fanout::Errc::stale_stream) != nullptr; }));
  CHECK(got.wait([&] { return got.count(State::live) >= 2; }));
  {
    std::lock_guard l(got.m);
    CHECK(got.find(State::backing_off, fanout::Errc::stale_stream)->reason.find("stale") != std::string::npos);
  }
  CHECK(up.stats().last_error == fanout::Errc::stale_stream);
  up.stop();
}

namespace {
/// A port that was free a moment ago: connecting to it is refused.
std::uint16_t dead_port() {
  asio::io_context tmp;
  asio::ip::tcp::acceptor a(tmp, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}
}  // namespace

TEST_CASE("endpoints are tried in order: a dead one first, then a live one") {
  using State = fanout::Upstream::State;
  Downstream down;
  Watch got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(dead_port()) + "/ws",
            "ws://127.0.0.1:" + std::to_string(down.server->port()) + "/ws"};
  o.subscribe = {R"({"op":"subscribe","args":["x"]})"};
  o.backoff_initial = 10ms;
  o.backoff_max = 50ms;
  fanout::Upstream up(loop.io, o, got.on_message(), got.on_event());
  up.start();
  REQUIRE(got.wait([&] { return got.find(State::live) != nullptr; }));
  CHECK(up.stats().failures >= 1);
  CHECK(up.stats().url == o.urls[1]);
  std::lock_guard l(got.m);
  CHECK(got.find(State::live)->url == o.urls[1]);
  REQUIRE(got.find(State::backing_off));
  CHECK(got.find(State::backing_off)->error == asio::error::connection_refused);
  CHECK(got.events.front().url == o.urls[0]);  // connecting to the first one first
}

TEST_CASE("events, stats and errors never show an upstream URL's credentials") {
  using State = fanout::Upstream::State;
  Watch got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  const auto port = std::to_string(dead_port());
  o.urls = {"ws://bob:hunter2@127.0.0.1:" + port + "/ws?apiKey=k1&depth=5"};
  o.backoff_initial = 10ms;
  o.backoff_max = 50ms;
  fanout::Upstream up(loop.io, o, got.on_message(), got.on_event());
  up.start();
  REQUIRE(got.wait([&] { return got.find(State::backing_off) != nullptr; }));
  const auto shown = "ws://***@127.0.0.1:" + port + "/ws?apiKey=***&depth=5";
  CHECK(up.stats().url == shown);
  std::lock_guard l(got.m);
  for (const auto& e : got.events) {
    CHECK(e.url == shown);
    CHECK(e.reason.find("hunter2") == std::string::npos);
  }
  try {
    fanout::parse_ws_url("ws://bob:hunter2@127.0.0.1:x/?token=t2");
    FAIL("a bad port must throw");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    CHECK(std::string(e.what()).find("t2") == std::string::npos);
  }
}

TEST_CASE("max_reconnect_attempts: the client stops with max_attempts_reached") {
  using State = fanout::Upstream::State;
  Watch got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(dead_port()) + "/ws"};
  o.max_reconnect_attempts = 2;
  o.custom_delay = [](unsigned) { return 1ms; };
  fanout::Upstream up(loop.io, o, got.on_message(), got.on_event());
  up.start();
  REQUIRE(got.wait([&] { return got.find(State::stopped) != nullptr; }));
  CHECK(up.state() == State::stopped);
  CHECK(up.stats().failures == 3);  // the first attempt and two retries
  CHECK(up.stats().last_error == fanout::Errc::max_attempts_reached);
  std::lock_guard l(got.m);
  CHECK(got.find(State::stopped)->error == fanout::Errc::max_attempts_reached);
  CHECK(got.count(State::backing_off) == 2);
  CHECK(got.count(State::connecting) == 3);
  CHECK(got.find(State::backing_off)->error == asio::error::connection_refused);
}

TEST_CASE("an upgrade the server refuses is a failure, not a crash") {
  using State = fanout::Upstream::State;
  Downstream down;
  Watch got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(down.server->port()) + "/not-served"};
  o.backoff_initial = 10ms;
  o.backoff_max = 20ms;
  fanout::Upstream up(loop.io, o, {}, got.on_event());
  up.start();
  REQUIRE(got.wait([&] { return got.find(State::backing_off, fanout::Errc::handshake_rejected) != nullptr; }));
  {
    std::lock_guard l(got.m);
    CHECK(got.find(State::backing_off)->reason.find("404") != std::string::npos);
  }
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

// F7: a server that accepts the upgrade and closes at once must not get a reconnect storm.
TEST_CASE("accept-then-close: the backoff still grows, since only a stable connection resets it") {
  using State = fanout::Upstream::State;
  asio::io_context server_io;
  asio::ip::tcp::acceptor acceptor(server_io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  constexpr int rounds = 4;
  std::thread server([&] {
    for (int i = 0; i < rounds; ++i) {
      asio::ip::tcp::socket s(server_io);
      acceptor.accept(s);
      asio::streambuf buf;
      const auto n = asio::read_until(s, buf, "\r\n\r\n");
      const std::string request(static_cast<const char*>(buf.data().data()), n);
      const auto key_at = request.find("Sec-WebSocket-Key: ") + 19;
      const auto key = request.substr(key_at, request.find("\r\n", key_at) - key_at);
      asio::write(s, asio::buffer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Accept: " +
                                  fanout::detail::websocket_accept(key) + "\r\n\r\n"));
    }  // and closes
  });
  Watch got;
  ClientLoop loop;
  fanout::Upstream::Options o;
  o.urls = {"ws://127.0.0.1:" + std::to_string(port) + "/ws"};
  o.heartbeat = fanout::Upstream::Heartbeat::none;
  o.permessage_deflate = false;
  o.backoff_initial = 10ms;
  o.backoff_max = 10s;
  o.jitter = 0;  // exact delays
  got.hook(o);
  fanout::Upstream up(loop.io, o, {}, got.on_event());
  up.start();
  REQUIRE(got.wait([&] { return got.count(State::backing_off) >= rounds; }));
  server.join();
  up.stop();
  std::lock_guard l(got.m);
  std::vector<long> delays;
  for (auto& e : got.events)
    if (e.state == State::backing_off) {
      delays.push_back(static_cast<long>(e.retry_in.count()));
      CHECK(e.error == fanout::Errc::upstream_closed);
    }
  delays.resize(rounds);
  CHECK(delays == std::vector<long>{10, 20, 40, 80});
  CHECK(got.count(State::live) >= rounds);  // each upgrade did succeed
  CHECK(got.connects == 1);
  CHECK(got.reconnects >= rounds - 1);
}

// Runtime on io_contexts the application runs: every way of shutting down completes.
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <future>
#include <string>
#include <thread>

namespace {

/// A client that upgrades on `port` with ?subscribe=t and waits for the ack (blocking, own context).
struct Client {
  asio::io_context io;
  asio::ip::tcp::socket socket{io};
  explicit Client(std::uint16_t port) {
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    const std::string req =
        "GET /ws?subscribe=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    asio::write(socket, asio::buffer(req));
  }
  /// Everything until the server closes the connection.
  std::string read_to_end() {
    std::string all;
    asio::error_code ec;
    asio::read(socket, asio::dynamic_buffer(all), ec);
    return all;
  }
};

constexpr auto k_going_away = "\x03\xf4";  // close code 1012 (drain) at the start of a close frame's payload

}  // namespace

TEST_CASE("Runtime(io) and Runtime({&a, &b}) compile and need no start()") {
  asio::io_context a(1), b(1);
  fanout::Runtime one(a);
  CHECK(one.shard_count() == 1);
  fanout::Runtime two({&a, &b});
  CHECK(two.shard_count() == 2);
  CHECK(&two.context(1) == &b);
  CHECK(!two.running());  // nobody runs them yet
}

TEST_CASE("stop() on the loop's own thread drains through that loop and returns") {
  asio::io_context io(1);
  fanout::Runtime rt(io);
  fanout::Hub hub(rt);
  hub.declare("t");  // clients join topics that exist
  fanout::Server server(rt, hub, {.port = 0});
  auto guard = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  Client c(server.port());
  for (int i = 0; i < 500 && hub.subscriber_count("t") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(hub.subscriber_count("t") == 1);
  hub.publish("t", "before-stop");
  std::promise<void> stopped;
  asio::post(io, [&] {  // e.g. the service's signal handler
    rt.stop(std::chrono::seconds(2));
    stopped.set_value();
  });
  auto f = stopped.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  const auto got = c.read_to_end();
  CHECK(got.find("before-stop") != std::string::npos);
  CHECK(got.find(k_going_away) != std::string::npos);
  CHECK(server.open_connections() == 0);
  guard.reset();
  io.stop();
  loop.join();
}

TEST_CASE("after the loop stopped, the destructors close what is left inline") {
  asio::io_context io(1);
  auto rt = std::make_unique<fanout::Runtime>(io);
  auto hub = std::make_unique<fanout::Hub>(*rt);
  hub->declare("t");  // clients join topics that exist
  auto server = std::make_unique<fanout::Server>(*rt, *hub, fanout::Server::Options{.port = 0});
  std::thread loop([&] {
    auto guard = asio::make_work_guard(io);
    io.run();
  });
  Client c(server->port());
  for (int i = 0; i < 500 && hub->subscriber_count("t") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(hub->subscriber_count("t") == 1);
  io.stop();
  loop.join();
  const auto start = std::chrono::steady_clock::now();
  server.reset();  // hung in force_close before: it waited for a loop nobody runs
  hub.reset();
  rt.reset();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  c.read_to_end();  // the socket was closed
}

TEST_CASE("a loop that never ran: construct, destroy, then run it") {
  asio::io_context io(1);
  {
    fanout::Runtime rt(io);
    fanout::Hub hub(rt);
    fanout::Server server(rt, hub, {.port = 0});
    hub.publish("t", "x");
    rt.stop();
  }
  io.run_for(std::chrono::milliseconds(50));  // what fanout left queued does nothing harmful
  CHECK(true);
}

TEST_CASE("destroying the server from another thread while the loop runs hands the work to the loop") {
  asio::io_context io(1);
  fanout::Runtime rt(io);
  fanout::Hub hub(rt);
  hub.declare("t");
  auto server = std::make_unique<fanout::Server>(rt, hub, fanout::Server::Options{.port = 0});
  auto guard = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  Client c(server->port());
  for (int i = 0; i < 500 && hub.subscriber_count("t") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(hub.subscriber_count("t") == 1);
  server.reset();
  c.read_to_end();
  CHECK(hub.subscriber_count("t") == 0);
  guard.reset();
  io.stop();
  loop.join();
}

TEST_CASE("an owned Runtime stopped from one of its shard threads is joined by its destructor") {
  auto rt = std::make_unique<fanout::Runtime>(fanout::Runtime::Options{.shards = 2});
  auto hub = std::make_unique<fanout::Hub>(*rt);
  hub->declare("t");  // clients join topics that exist
  auto server = std::make_unique<fanout::Server>(*rt, *hub, fanout::Server::Options{.port = 0});
  rt->start();
  std::promise<void> stopped;
  asio::post(rt->context(1), [&] {
    rt->stop(std::chrono::milliseconds(200));
    stopped.set_value();
  });
  REQUIRE(stopped.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  server.reset();
  hub.reset();
  rt.reset();  // joins the threads stop() could not
  CHECK(true);
}

// The smallest fanout server: publishes the time to topic "clock" every second.
//   ./fanout-broadcast 8080   then   websocat ws://127.0.0.1:8080/ws?subscribe=clock
#include <fanout/fanout.hpp>

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  fanout::Runtime runtime({.shards = 1});
  fanout::Hub hub(runtime);
  hub.declare("clock");  // clients may join before the first tick; other names are refused (error 4008)
  fanout::Server server(runtime, hub, {.port = port});
  std::cout << "ws://127.0.0.1:" << server.port() << "/ws?subscribe=clock" << std::endl;

  // A timer on shard 0 publishes; publish() may be called from any thread.
  asio::steady_timer timer(runtime.context(0));
  std::function<void()> tick = [&] {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    hub.publish("clock", R"({"time_ms":)" +
                             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) + "}");
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([&](const asio::error_code& ec) {
      if (!ec) tick();
    });
  };
  asio::post(runtime.context(0), tick);

  asio::signal_set stop(runtime.context(0), SIGINT, SIGTERM);
  std::atomic<bool> done = false;
  stop.async_wait([&](const asio::error_code&, int) {
    done = true;
    timer.cancel();
  });
  runtime.start();
  while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  runtime.stop();  // clients get close 1012 (drain, with retry_after_ms)
}

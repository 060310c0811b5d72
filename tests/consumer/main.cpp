#include <fanout/fanout.hpp>

#include <iostream>

// fanout must not change what asio offers the application (e.g. io_context::work).
#ifdef ASIO_NO_DEPRECATED
#error "fanout's targets propagate ASIO_NO_DEPRECATED"
#endif

int main() {
  fanout::Runtime runtime(fanout::Runtime::Options{.shards = 1});
  fanout::Hub hub(runtime);
  fanout::Server::Options options;
  options.port = 0;
  fanout::Server server(runtime, hub, options);
  runtime.start();
  const bool ok = server.port() != 0 && hub.publish("nobody-listens", "x").shards == 0;
  runtime.stop();
  std::cout << (ok ? "consumer ok" : "consumer FAILED") << "\n";
  return ok ? 0 : 1;
}

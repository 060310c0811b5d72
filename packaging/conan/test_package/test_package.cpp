// The package links and works: a runtime, a hub and a server on an OS-chosen loopback port.
#include <fanout/fanout.hpp>

#include <cstdio>

int main() {
  fanout::Runtime runtime(fanout::Runtime::Options{.shards = 1});
  fanout::Hub hub(runtime);
  fanout::Server::Options options;
  options.host = "127.0.0.1";
  options.port = 0;
  fanout::Server server(runtime, hub, options);
  runtime.start();
  const bool ok = server.port() != 0 && hub.publish("nobody-listens", "x").shards == 0;
  runtime.stop();
  std::printf("fanout %s: %s\n", FANOUT_VERSION_STRING, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

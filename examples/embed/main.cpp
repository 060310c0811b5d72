// fanout inside a service that already runs its own asio loop: no thread of fanout's, a publisher
// thread of the service's, a sink attached to the hub once, and a clean shutdown whichever way the
// service ends.
//
//   ./fanout-embed [--port P] [--journal FILE] [--shutdown on-loop|after-loop|destructor]
//   then: websocat 'ws://127.0.0.1:P/ws?subscribe=ticks'
//
// Clients from 127.0.0.1 (the service's own tools) are disconnected when they fall behind; everyone
// else gets a policy of the service's own that keeps only the newest tick (chosen in on_open).
//
// SIGTERM/SIGINT ends it; --shutdown picks how (each is an integration test, test_embed.py):
//   on-loop     the service's signal handler calls runtime.stop() on the loop's own thread
//   after-loop  the handler only stops the loop; fanout's destructors run after io.run() returned
//   destructor  the loop runs on a thread of the service's; the main thread destroys fanout while
//               it still runs (no stop(): clients are closed without the drain), then stops the loop
#include <fanout/fanout.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/signal_set.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace {

struct Args {
  std::uint16_t port = 8080;
  std::string journal = "fanout-embed.jsonl";
  std::string shutdown = "on-loop";
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) a.port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--journal")) a.journal = argv[i + 1];
    if (!std::strcmp(argv[i], "--shutdown")) a.shutdown = argv[i + 1];
  }
  return a;
}

/// A client that cannot keep up gets the newest tick in place of the one still queued: never a backlog.
class NewestTickOnly final : public fanout::BackpressurePolicy {
 public:
  std::string_view name() const noexcept override { return "newest_tick_only"; }
  Verdict on_overflow(fanout::OutboundQueue& queue, fanout::FrameRef& frame,
                      const fanout::OverflowContext& context) override {
    if (queue.replace_latest_of_topic(context.topic_id, frame, context.counters)) return Verdict::placed;
    while (!queue.fits(frame->size(), context.limits) && queue.drop_oldest(context.counters)) {
    }
    return Verdict::enqueue;
  }
};

/// The service's own business: publishes a tick every 10 ms from a thread fanout knows nothing of.
class Publisher {
 public:
  explicit Publisher(fanout::Hub& hub)
      : thread_([this, &hub] {
          for (std::uint64_t n = 1; !stop_; ++n) {
            hub.publish("ticks", "{\"n\":" + std::to_string(n) + "}");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }) {}
  ~Publisher() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  asio::io_context io(1);  // the service's loop, run by one thread (fanout's one-thread rule)
  asio::signal_set signals(io, SIGINT, SIGTERM);

  // Declared in this order, destroyed in reverse: the publisher stops first, the runtime last.
  std::optional<fanout::Runtime> runtime(std::in_place, io);
  // "ticks" exists from the start: clients join it before the first publish (they create no topics).
  std::optional<fanout::Hub> hub(std::in_place, *runtime, fanout::Hub::Options{.topics = {"ticks"}});
  fanout::SinkSet sinks;
  sinks.add(std::make_unique<fanout::JournalWriter>(fanout::JournalWriter::Options{.path = args.journal}), {});
  // Every accepted message reaches the sinks with the seq clients see, whoever published it.
  hub->add_publish_observer([&sinks](const fanout::Hub::Published& m) { sinks.offer(m.topic, m.payload, m.seq); });
  sinks.start();
  fanout::Server::Options options;
  options.port = args.port;
  fanout::Server::Callbacks callbacks;
  auto newest_only = std::make_shared<NewestTickOnly>();
  callbacks.on_open = [newest_only](fanout::Session& s) {  // on the loop's thread
    const bool local = s.remote().address() == asio::ip::make_address("127.0.0.1");
    s.set_policy(local ? fanout::disconnect() : newest_only);
    std::printf("embed: client %llu from %s gets policy %s\n", static_cast<unsigned long long>(s.id()),
                s.remote().address().to_string().c_str(), std::string(s.policy().name()).c_str());
    std::fflush(stdout);
  };
  std::optional<fanout::Server> server(std::in_place, *runtime, *hub, options, callbacks);
  std::optional<Publisher> publisher(std::in_place, *hub);
  std::printf("embed: listening on 127.0.0.1:%u\n", static_cast<unsigned>(server->port()));
  std::fflush(stdout);

  auto destroy_fanout = [&] {
    publisher.reset();
    server.reset();  // closes its clients (1012 after a drain only through runtime.stop())
    hub.reset();
    runtime.reset();
  };

  if (args.shutdown == "on-loop") {
    signals.async_wait([&](const asio::error_code&, int) {
      publisher.reset();
      runtime->stop(std::chrono::seconds(2));  // on the loop's own thread: drains, then returns
      signals.cancel();
      io.stop();
    });
    io.run();
    destroy_fanout();
  } else if (args.shutdown == "after-loop") {
    signals.async_wait([&](const asio::error_code&, int) { io.stop(); });
    io.run();
    destroy_fanout();  // nothing runs the loop any more: fanout closes what is left inline
  } else if (args.shutdown == "destructor") {
    std::atomic<bool> signalled = false;
    signals.async_wait([&](const asio::error_code&, int) { signalled = true; });
    std::thread loop([&] { io.run(); });
    while (!signalled) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    destroy_fanout();  // from this thread while the loop runs: the destructors hand their work to it
    io.stop();
    loop.join();
  } else {
    std::fprintf(stderr, "embed: unknown --shutdown %s\n", args.shutdown.c_str());
    return 2;
  }
  sinks.stop();
  std::printf("embed: stopped cleanly\n");
  return 0;
}

// fanout-test-server: a server driven through stdin, used by the integration tests (README.md here).
#include <fanout/fanout.hpp>

#include <fmt/format.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex out_mutex;
void say(const std::string& line) {
  std::lock_guard lock(out_mutex);
  std::cout << line << std::endl;
}

long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:") {
      long v = 0;
      f >> v;
      return v;
    }
    f.ignore(1 << 12, '\n');
  }
  return 0;
}

std::uint64_t now_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

struct Publisher {
  fanout::Hub& hub;
  std::mutex mutex;
  std::map<std::string, std::uint64_t> seqs;

  // Under the lock, so the payload's seq and the hub's agree even with several publishing threads.
  std::uint64_t publish_one(const std::string& topic, std::size_t bytes, const std::string& key = {}) {
    std::lock_guard lock(mutex);
    const std::uint64_t seq = ++seqs[topic];
    std::string msg = fmt::format(R"({{"seq":{},"ts":{},"topic":"{}",)", seq, now_us(), topic);
    if (!key.empty()) msg += fmt::format(R"("key":"{}",)", key);
    msg += R"("pad":")";
    if (msg.size() + 2 < bytes) msg.append(bytes - msg.size() - 2, 'x');
    msg += "\"}";
    hub.publish(topic, msg, fanout::Hub::PublishOptions{.key = key});
    return seq;
  }
};

}  // namespace

int main(int argc, char** argv) {
  fanout::Server::Options opt;
  opt.port = 0;
  unsigned shards = 1;
  fanout::Hub::Options hub_opt;
  // Clients create topics as freely as before issue 13 (flags below restore the library's limits).
  hub_opt.client_topics = {.allow = true, .max_topics = 100'000, .max_per_connection = 100'000, .max_per_address = 0};
  auto num = [&](int& i) { return std::stoll(argv[++i]); };
  auto ms = [&](int& i) { return std::chrono::milliseconds(num(i)); };
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument("missing value for " + a);
      if (a == "--host")
        opt.host = argv[++i];
      else if (a == "--port")
        opt.port = static_cast<std::uint16_t>(num(i));
      else if (a == "--shards")
        shards = static_cast<unsigned>(num(i));
      else if (a == "--path")
        opt.paths = {argv[++i]};
      else if (a == "--policy")
        opt.session.policy = fanout::policy_by_name(argv[++i]);
      else if (a == "--max-queue-bytes")
        opt.session.queue.max_bytes = static_cast<std::size_t>(num(i));
      else if (a == "--max-queue-frames")
        opt.session.queue.max_frames = static_cast<std::size_t>(num(i));
      else if (a == "--queue-budget-bytes")  // server-wide queue memory budget; 0: off
        opt.queue_budget_bytes = static_cast<std::size_t>(num(i));
      else if (a == "--max-message-bytes")
        opt.session.max_message_bytes = static_cast<std::size_t>(num(i));
      else if (a == "--handshake-timeout-ms")
        opt.handshake_timeout = ms(i);
      else if (a == "--ping-interval-ms")
        opt.session.ping_interval = ms(i);
      else if (a == "--idle-timeout-ms")
        opt.session.idle_timeout = ms(i);
      else if (a == "--write-timeout-ms")
        opt.session.write_timeout = ms(i);
      else if (a == "--control-ops-burst")  // per-client bounds (docs/security.md)
        opt.session.control_ops_burst = static_cast<double>(num(i));
      else if (a == "--subscribe-timeout-ms")
        opt.session.subscribe_timeout = ms(i);
      else if (a == "--max-subscriptions")
        opt.session.max_subscriptions = static_cast<std::size_t>(num(i));
      else if (a == "--client-topics") {
        // The fan-out tests subscribe before the first publish: this server lets clients create topics
        // unless told `deny` (the library's default; `declare` then makes topics exist).
        const std::string v = argv[++i];
        if (v != "allow" && v != "deny") throw std::invalid_argument("--client-topics must be allow or deny");
        hub_opt.client_topics.allow = v == "allow";
      } else if (a == "--client-topics-max")
        hub_opt.client_topics.max_topics = static_cast<std::size_t>(num(i));
      else if (a == "--client-topics-per-connection")
        hub_opt.client_topics.max_per_connection = static_cast<std::size_t>(num(i));
      else if (a == "--client-topics-per-address")
        hub_opt.client_topics.max_per_address = static_cast<std::size_t>(num(i));
      else if (a == "--max-topics")
        hub_opt.max_topics = static_cast<std::size_t>(num(i));
      else if (a == "--history-messages")
        hub_opt.history.max_messages = static_cast<std::size_t>(num(i));
      else if (a == "--history-bytes")
        hub_opt.history.max_bytes = static_cast<std::size_t>(num(i));
      else if (a == "--envelope-path") {
        opt.paths.push_back(argv[++i]);
        opt.envelope_paths.push_back(opt.paths.back());
      } else if (a == "--auth-key-file")  // JWT keys (token_verifier.hpp): every topic then needs a token
        opt.auth.verifier =
            std::make_shared<fanout::TokenVerifier>(fanout::TokenVerifier::Options{.key_file = argv[++i]});
      else if (a == "--tls-cert")
        opt.tls = fanout::Server::Tls{argv[++i], opt.tls ? opt.tls->key_file : ""};
      else if (a == "--tls-key")
        opt.tls = fanout::Server::Tls{opt.tls ? opt.tls->cert_file : "", argv[++i]};
      else
        throw std::invalid_argument("unknown option " + a);
    }
    if (opt.session.ping_interval > std::chrono::milliseconds(0) && opt.tick > opt.session.ping_interval)
      opt.tick = opt.session.ping_interval;
    opt.tick = std::min(opt.tick, std::chrono::milliseconds(100));
  } catch (const std::exception& e) {
    std::cerr << "fanout-test-server: " << e.what() << "\n";
    return 2;
  }

  fanout::Runtime runtime({.shards = shards});
  fanout::Hub hub(runtime, hub_opt);
  // The topic list is an admin route; this test server serves it on its one port, always fresh.
  opt.http_routes.push_back(fanout::topic_list_route(hub, {.refresh = std::chrono::milliseconds(0)}));
  fanout::Server server(runtime, hub, opt);
  runtime.start();
  say(fmt::format("port={}", server.port()));

  Publisher pub{hub, {}, {}};
  std::vector<std::thread> background;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "publish") {
      std::string topic;
      std::size_t count = 0, bytes = 0;
      in >> topic >> count >> bytes;
      std::uint64_t last = 0;
      for (std::size_t i = 0; i < count; ++i) last = pub.publish_one(topic, bytes);
      say(fmt::format("published {} {}", topic, last));
    } else if (cmd == "keyed") {
      std::string topic;
      std::size_t keys = 1, count = 0, bytes = 0;
      in >> topic >> keys >> count >> bytes;
      std::uint64_t last = 0;
      for (std::size_t i = 0; i < count; ++i) last = pub.publish_one(topic, bytes, fmt::format("k{}", i % keys));
      say(fmt::format("published {} {}", topic, last));
    } else if (cmd == "declare") {
      std::string topic;
      in >> topic;
      say(fmt::format("declared {} {}", topic, hub.declare(topic) ? "ok" : "refused"));
    } else if (cmd == "topics") {
      say(fmt::format("topics {} client {}", hub.topic_count(), hub.client_topic_count()));
    } else if (cmd == "rate") {
      std::string topic;
      double per_sec = 0, seconds = 0;
      std::size_t bytes = 0;
      in >> topic >> per_sec >> bytes >> seconds;
      say("rate-started " + topic);
      background.emplace_back([&pub, topic, per_sec, bytes, seconds] {
        const auto start = std::chrono::steady_clock::now();
        const auto total = static_cast<std::uint64_t>(per_sec * seconds);
        std::uint64_t last = 0;
        for (std::uint64_t i = 0; i < total; ++i) {
          std::this_thread::sleep_until(start + std::chrono::duration<double>(static_cast<double>(i) / per_sec));
          last = pub.publish_one(topic, bytes);
        }
        say(fmt::format("rate-done {} {}", topic, last));
      });
    } else if (cmd == "rate-multi") {
      // Topics t0..t<count-1>, each at per_sec, from one background thread (bench/run's market scenario).
      std::size_t count = 0, bytes = 0;
      double per_sec = 0, seconds = 0;
      in >> count >> per_sec >> bytes >> seconds;
      say("rate-started multi");
      background.emplace_back([&pub, count, per_sec, bytes, seconds] {
        std::vector<std::string> topics;
        for (std::size_t t = 0; t < count; ++t) topics.push_back(fmt::format("t{}", t));
        const auto start = std::chrono::steady_clock::now();
        const auto rounds = static_cast<std::uint64_t>(per_sec * seconds);
        for (std::uint64_t i = 0; i < rounds; ++i) {
          std::this_thread::sleep_until(start + std::chrono::duration<double>(static_cast<double>(i) / per_sec));
          for (const auto& t : topics) pub.publish_one(t, bytes);
        }
        say(fmt::format("rate-done multi {}", rounds * topics.size()));
      });
    } else if (cmd == "wait-subscribers") {
      std::size_t n = 0;
      long timeout_ms = 0;
      in >> n >> timeout_ms;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      while (server.stats().subscriptions < n && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      say(fmt::format("subscribers {}", server.stats().subscriptions));
    } else if (cmd == "stats") {
      const auto s = server.stats();
      say(fmt::format(
          R"({{"sessions":{},"subscriptions":{},"topics":{},"duplicates":{},"published":{},"delivered":{},"writes":{},"write_stalls":{},"dropped_newest":{},"dropped_oldest":{},"conflated":{},"disconnected_slow":{},"rejected":{},"rss_kb":{},"heap_in_use_bytes":{},"queue_budget_bytes":{},"queue_memory_bytes":{},"queue_slot_bytes":{},"frame_bytes":{},"budget_dropped":{},"budget_disconnected":{},"budget_cap_frames":{}}})",
          s.sessions, s.subscriptions, hub.topic_count(), hub.duplicates(), hub.published(), s.deliveries, s.writes,
          s.write_stalls, s.dropped_newest, s.dropped_oldest, s.conflated, s.disconnected_slow, s.rejected, rss_kb(),
          mallinfo2().uordblks, s.queue_budget_bytes, s.queue_memory_bytes, s.queue_slot_bytes, s.frame_bytes,
          s.budget_dropped, s.budget_disconnected, s.budget_cap_frames));
    } else if (cmd == "quit") {
      break;
    } else if (!cmd.empty()) {
      say("error unknown command " + cmd);
    }
  }
  for (auto& t : background) t.join();
  runtime.stop(std::chrono::seconds(5));
  say("bye");
  return 0;
}

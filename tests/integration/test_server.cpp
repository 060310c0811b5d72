// fanout-test-server: a server driven through stdin, used by the integration tests (README.md here).
#include <fanout/detail/deflate_stats.hpp>
#include <fanout/fanout.hpp>
#include <fanout/gateway.hpp>
#include <fanout/http.hpp>

#include <fmt/format.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
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
  bool market_pad = false;  // --pad market
  std::uint64_t rng_state = 88172645463325252ull;
  std::uint64_t rng() {  // xorshift: reproducible payloads
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
  }

  // Under the lock, so the payload's seq and the hub's agree even with several publishing threads.
  std::uint64_t publish_one(const std::string& topic, std::size_t bytes, const std::string& key = {}) {
    std::lock_guard lock(mutex);
    const std::uint64_t seq = ++seqs[topic];
    std::string msg = fmt::format(R"({{"seq":{},"ts":{},"topic":"{}",)", seq, now_us(), topic);
    if (!key.empty()) msg += fmt::format(R"("key":"{}",)", key);
    msg += R"("pad":")";
    if (market_pad && msg.size() + 2 < bytes) {
      // Price levels with random digits (bench/run deflate): compresses like market data, not like 'xxx'.
      while (msg.size() + 2 < bytes)
        msg += fmt::format("{}.{}:{}.{:04},", 60000 + rng() % 999, rng() % 10, rng() % 9, rng() % 10000);
      msg.resize(bytes - 2);
    } else if (msg.size() + 2 < bytes) {
      msg.append(bytes - msg.size() - 2, 'x');
    }
    msg += "\"}";
    hub.publish(topic, msg, fanout::Hub::PublishOptions{.key = key});
    return seq;
  }
};

/// Runs functions later on one thread of its own: the demo callbacks answer "from another thread".
/// What is still waiting at the end is dropped (an undecided connection, an unanswered rpc).
class Later {
 public:
  Later() : thread_([this] { run(); }) {}
  ~Later() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void after(std::chrono::milliseconds delay, std::function<void()> fn) {
    {
      std::lock_guard lock(mutex_);
      tasks_.emplace(std::chrono::steady_clock::now() + delay, std::move(fn));
    }
    wake_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      if (tasks_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto when = tasks_.begin()->first;
      if (std::chrono::steady_clock::now() < when) {
        wake_.wait_until(lock, when);
        continue;
      }
      auto fn = std::move(tasks_.begin()->second);
      tasks_.erase(tasks_.begin());
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

/// --demo-connect: refuses with 401 unless ?uid=; ?deny=N refuses with N; ?slow=1 decides after 300 ms
/// from another thread; ?never=1 never decides (504 at handshake_timeout); ?topics=a,b joins them;
/// ?show_client_id=1 refuses with 409 and ConnectRequest::client_id as the reason.
void demo_connect(Later& later, const fanout::ConnectRequest& r, fanout::ConnectDecide decide) {
  if (const auto deny = r.query_param("deny")) {
    decide(fanout::ConnectDecision::refused(std::stoi(*deny), "denied by the demo"));
    return;
  }
  if (r.query_param("never")) return;
  if (r.query_param("show_client_id")) {  // ConnectRequest::client_id, seen by the client as the body
    decide(fanout::ConnectDecision::refused(409, r.client_id.empty() ? "(none)" : r.client_id));
    return;
  }
  const auto uid = r.query_param("uid");
  fanout::ConnectDecision d =
      uid ? fanout::ConnectDecision::accepted(*uid, split_commas(r.query_param("topics").value_or("")))
          : fanout::ConnectDecision::refused(401, "uid required");
  if (r.query_param("slow"))
    later.after(std::chrono::milliseconds(300), [decide = std::move(decide), d = std::move(d)] { decide(d); });
  else
    decide(std::move(d));
}

/// --demo-rpc: echoes data; methods "whoami" (the session's user id), "slow" (echo after 200 ms from
/// another thread), "late" (after 1 s, then prints `late-answered ID`), "never" (no answer), "fail"
/// (error 4000), "bad" (an answer that is not JSON).
void demo_rpc(Later& later, fanout::Session& s, const fanout::RpcRequest& req, fanout::RpcReply reply) {
  if (req.method == "whoami")
    reply.result(fmt::format(R"({{"user":"{}","session":{}}})", s.user_id(), s.id()));
  else if (req.method == "slow")
    later.after(std::chrono::milliseconds(200), [reply, data = req.data] { reply.result(data); });
  else if (req.method == "late")  // past the tests' rpc_timeout; says when it answered
    later.after(std::chrono::milliseconds(1000), [reply, id = req.id] {
      reply.result(R"("late")");
      say("late-answered " + id);
    });
  else if (req.method == "never")
    return;
  else if (req.method == "fail")
    reply.error(4000, "failed as asked");
  else if (req.method == "bad")
    reply.result("not json{");
  else
    reply.result(req.data);
}

// TEST SCAFFOLDING, not an API: GET routes that drive the Gateway until the server API (/api/*,
// gw-api) lands. Each answers {"n":N} or {"ok":bool}; /gw/query answers every index query at once.
void add_gateway_routes(fanout::Gateway& g, std::vector<fanout::HttpRoute>& routes) {
  using fanout::HttpRequest;
  using fanout::HttpResponse;
  auto param = [](const HttpRequest& r, std::string_view k) {
    return fanout::detail::query_param(r.query(), k).value_or("");
  };
  auto list = [](const std::string& csv) {
    std::vector<std::string> out;
    std::stringstream in(csv);
    for (std::string item; std::getline(in, item, ',');)
      if (!item.empty()) out.push_back(item);
    return out;
  };
  auto json = [](std::string body) {
    return HttpResponse{.content_type = "application/json", .body = std::move(body)};
  };
  auto n = [json](std::size_t v) { return json(fmt::format(R"({{"n":{}}})", v)); };
  auto ok = [json](bool v) { return json(fmt::format(R"({{"ok":{}}})", v)); };
  auto strings = [](const std::vector<std::string>& v) {
    std::string out = "[";
    for (const auto& s : v) out += (out.size() > 1 ? ",\"" : "\"") + s + "\"";
    return out + "]";
  };
  auto add = [&](std::string path, std::function<HttpResponse(const HttpRequest&)> h) {
    routes.push_back({std::move(path), false, std::move(h)});
  };
  add("/gw/send_to_client",
      [=, &g](const HttpRequest& r) { return n(g.send_to_client(param(r, "client"), param(r, "text"))); });
  add("/gw/send_to_user",
      [=, &g](const HttpRequest& r) { return n(g.send_to_user(param(r, "user"), param(r, "text"))); });
  add("/gw/send_to_all",
      [=, &g](const HttpRequest& r) { return n(g.send_to_all(param(r, "text"), list(param(r, "exclude")))); });
  add("/gw/publish", [=, &g](const HttpRequest& r) {
    return n(g.publish(param(r, "topic"), param(r, "text"), list(param(r, "exclude"))));
  });
  add("/gw/bind", [=, &g](const HttpRequest& r) { return ok(g.bind_user(param(r, "client"), param(r, "user"))); });
  add("/gw/unbind", [=, &g](const HttpRequest& r) { return ok(g.unbind_user(param(r, "client"))); });
  add("/gw/join", [=, &g](const HttpRequest& r) { return ok(g.join(param(r, "client"), param(r, "topic"))); });
  add("/gw/leave", [=, &g](const HttpRequest& r) { return ok(g.leave(param(r, "client"), param(r, "topic"))); });
  add("/gw/close_client", [=, &g](const HttpRequest& r) { return ok(g.close_client(param(r, "client"))); });
  add("/gw/close_user", [=, &g](const HttpRequest& r) {
    return n(g.close_user(param(r, "user"), fanout::CloseCode::normal, "closed by the application"));
  });
  add("/gw/query", [=, &g](const HttpRequest& r) {
    const auto topic = param(r, "topic"), user = param(r, "user");
    std::string users = "[";
    for (const auto& m : g.topic_users(topic))
      users += fmt::format(R"({}{{"user":"{}","connections":{}}})", users.size() > 1 ? "," : "", m.user, m.connections);
    users += "]";
    return json(fmt::format(
        R"({{"connections":{},"users":{},"online":{},"clients_of_user":{},"topic_client_count":{},"topic_clients":{},"topic_users":{},"topic_user_count":{},"sends":{}}})",
        g.connection_count(), g.user_count(), g.is_online(user), strings(g.clients_of_user(user)),
        g.topic_client_count(topic), strings(g.topic_clients(topic)), users, g.topic_user_count(topic),
        g.stats().sends));
  });
}

}  // namespace

int main(int argc, char** argv) {
  fanout::Server::Options opt;
  opt.port = 0;
  unsigned shards = 1;
  fanout::Hub::Options hub_opt;
  // Clients create topics as freely as before issue 13 (flags below restore the library's limits).
  hub_opt.client_topics = {.allow = true, .max_topics = 100'000, .max_per_connection = 100'000, .max_per_address = 0};
  std::optional<fanout::Gateway::Options> gateway_opt;
  auto num = [&](int& i) { return std::stoll(argv[++i]); };
  auto ms = [&](int& i) { return std::chrono::milliseconds(num(i)); };
  bool demo_connect_on = false, demo_rpc_on = false, demo_echo_on = false;
  bool market_pad = false;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      // The application's callbacks (Server::Callbacks), as small demos the tests drive.
      if (a == "--demo-connect" || a == "--demo-rpc" || a == "--demo-echo") {
        (a == "--demo-connect" ? demo_connect_on : a == "--demo-rpc" ? demo_rpc_on : demo_echo_on) = true;
        continue;
      }
      if (a == "--tls-openssl-records") {  // Tls::own_records = false (after --tls-cert and --tls-key)
        if (!opt.tls) throw std::invalid_argument("--tls-openssl-records before --tls-cert");
        opt.tls->own_records = false;
        continue;
      }
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
      else if (a == "--pad")  // "market": payload padding like price levels; else 'x's
        market_pad = std::string(argv[++i]) == "market";
      else if (a == "--deflate")  // 0: no permessage-deflate (negotiated with clients that offer it by default)
        opt.session.permessage_deflate = num(i) != 0;
      else if (a == "--deflate-threshold")
        opt.session.deflate_threshold = static_cast<std::size_t>(num(i));
      else if (a == "--handshake-timeout-ms")
        opt.handshake_timeout = ms(i);
      else if (a == "--ping-interval-ms")
        opt.session.ping_interval = ms(i);
      else if (a == "--idle-timeout-ms")
        opt.session.idle_timeout = ms(i);
      else if (a == "--write-timeout-ms")
        opt.session.write_timeout = ms(i);
      else if (a == "--close-write-timeout-ms")
        opt.session.close_write_timeout = ms(i);
      else if (a == "--control-ops-burst")  // per-client bounds (docs/security.md)
        opt.session.control_ops_burst = static_cast<double>(num(i));
      else if (a == "--subscribe-timeout-ms")
        opt.session.subscribe_timeout = ms(i);
      else if (a == "--messages-per-second")
        opt.session.messages_per_second = static_cast<double>(num(i));
      else if (a == "--messages-burst")
        opt.session.messages_burst = static_cast<double>(num(i));
      else if (a == "--max-pending-rpcs")
        opt.session.max_pending_rpcs = static_cast<std::size_t>(num(i));
      else if (a == "--rpc-timeout-ms")
        opt.session.rpc_timeout = ms(i);
      else if (a == "--max-subscriptions")
        opt.session.max_subscriptions = static_cast<std::size_t>(num(i));
      else if (a == "--min-interval-ms")  // throttled subscriptions ("interval_ms")
        opt.session.min_interval = ms(i);
      else if (a == "--max-interval-ms")
        opt.session.max_interval = ms(i);
      else if (a == "--max-intervals-per-topic")
        hub_opt.max_intervals_per_topic = static_cast<std::size_t>(num(i));
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
      else if (a == "--gateway")  // attaches a fanout::Gateway with this node name, and the /gw/* routes below
        gateway_opt = fanout::Gateway::Options{.node = argv[++i]};
      else if (a == "--gateway-max-list") {
        if (!gateway_opt) throw std::invalid_argument("--gateway-max-list after --gateway");
        gateway_opt->max_list = static_cast<std::size_t>(num(i));
      } else if (a == "--gateway-max-per-user") {
        if (!gateway_opt) throw std::invalid_argument("--gateway-max-per-user after --gateway");
        gateway_opt->max_connections_per_user = static_cast<std::size_t>(num(i));
      } else if (a == "--tls-cert")
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
  Later later;  // before the server: its answers may still be queued when the server goes
  std::unique_ptr<fanout::Gateway> gateway;
  fanout::Server::Callbacks callbacks;
  if (gateway_opt) {
    gateway = std::make_unique<fanout::Gateway>(runtime, hub, *gateway_opt);
    add_gateway_routes(*gateway, opt.http_routes);
    // Tells each client its id, so a test can address it.
    callbacks.on_open = [g = gateway.get()](fanout::Session& s) {
      s.send(fmt::format(R"({{"event":"hello","client_id":"{}","user":"{}"}})", g->client_id(s), s.user_id()));
    };
  }
  if (demo_connect_on)
    callbacks.on_connect = [&later](const fanout::ConnectRequest& r, fanout::ConnectDecide decide) {
      demo_connect(later, r, std::move(decide));
    };
  if (demo_rpc_on)
    callbacks.on_rpc = [&later](fanout::Session& s, const fanout::RpcRequest& req, fanout::RpcReply reply) {
      demo_rpc(later, s, req, std::move(reply));
    };
  if (demo_echo_on)
    callbacks.on_message = [](fanout::Session& s, std::string_view payload, fanout::Opcode op) { s.send(payload, op); };
  fanout::Server server(runtime, hub, opt, std::move(callbacks));
  if (gateway) gateway->attach(server);
  runtime.start();
  say(fmt::format("port={}", server.port()));

  Publisher pub{hub, {}, {}};
  pub.market_pad = market_pad;
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
          R"({{"sessions":{},"subscriptions":{},"topics":{},"duplicates":{},"published":{},"delivered":{},"writes":{},"write_stalls":{},"dropped_newest":{},"dropped_oldest":{},"conflated":{},"disconnected_slow":{},"rejected":{},"rss_kb":{},"heap_in_use_bytes":{},"queue_budget_bytes":{},"queue_memory_bytes":{},"queue_slot_bytes":{},"frame_bytes":{},"budget_dropped":{},"budget_disconnected":{},"budget_cap_frames":{},"throttle_flushes":{},"throttle_conflated":{},"tls_own_records":{},"tls_record_errors":{}}})",
          s.sessions, s.subscriptions, hub.topic_count(), hub.duplicates(), hub.published(), s.deliveries, s.writes,
          s.write_stalls, s.dropped_newest, s.dropped_oldest, s.conflated, s.disconnected_slow, s.rejected, rss_kb(),
          mallinfo2().uordblks, s.queue_budget_bytes, s.queue_memory_bytes, s.queue_slot_bytes, s.frame_bytes,
          s.budget_dropped, s.budget_disconnected, s.budget_cap_frames, s.throttle_flushes, s.throttle_conflated,
          s.tls_own_records, s.tls_record_errors));
    } else if (cmd == "deflate-stats") {  // permessage-deflate compress-once (process-wide)
      const auto& d = fanout::detail::deflate_stats();
      say(fmt::format(R"(deflate {{"compressions":{},"bytes_saved":{},"raced":{}}})", d.compressions.load(),
                      d.bytes_saved.load(), d.raced.load()));
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

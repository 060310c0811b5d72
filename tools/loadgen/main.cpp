// fanout-loadgen: WebSocket load client for fanout servers.
//
//   fanout-loadgen --host 127.0.0.1 --port N [--path /ws] --connections N [--procs P]
//                  (--topics T1,T2,... | --topics-per-conn K --topic-count M)
//                  [--subscribe-mode json|url] [--duration-s S] [--expect-per-topic N]
//                  [--connect-rate N/s] [--src-base 127.0.0.2] [--src-count 250]
//                  [--slow-fraction F] [--slow-read-bps B] [--slow-rcvbuf BYTES]
//                  [--json-out FILE] [--ready-file FILE] [--max-inflight N]
//                  [--setup-timeout-s S] [--no-wait-acks]
//                  [--tls [--tls-ca-file CA] [--tls-ciphersuites LIST]]   (wss: OpenSSL per connection, no
//                  verification without a CA; TLS 1.3 suites in a browser's order unless LIST says otherwise)
//                  [--deflate]   (offers permessage-deflate; bytes_received counts what the socket carried)
//                  [--uid-prefix P] [--rpc-rate R]   (two-way: ?uid=P<i>, R rpc requests/s per connection)
//                  [--interval-ms N]   (throttled subscriptions: at most one update per key per N ms)
//   fanout-loadgen --self-test [--connections 100] [--duration-s 5] [--self-test-bytes 128]
//                  [--self-test-batch 64] [other flags]
//
// The parent forks P children (each <= 19,000 connections, so <= 19,000 fds under a 20,000
// limit); every child runs one single-threaded epoll loop (client.hpp). Children report
// "ready" over a pipe once each of their connections is subscribed (all acks in) or has
// failed; the parent then tells them to start the timed run ("g"), writes --ready-file and
// prints "ready connections=N" on stderr. At the end each child writes its counters,
// histograms and maps as text lines to the pipe; the parent merges them and prints one JSON
// object on stdout (and to --json-out).
//
// Measuring the ceiling: `fanout-loadgen --self-test` forks a trivial local sender
// (selftest.hpp) that writes batches of README-format messages to every connection as fast
// as the receiver accepts them, runs one loadgen process against it and prints, on stderr,
// messages/s of that process and messages per CPU-second of it (the JSON is on stdout as usual).
// Measured on the 2-core Debian 12 VM this was written on (sender on one core, receiver on the
// other, 128-byte messages, 5 s runs):
//   --self-test --connections 100  --self-test-batch 64 : 7.6-15 M msg/s, 13-16 M msg/CPU-s
//   --self-test --connections 1000 --self-test-batch 64 : 7.0-8.2 M msg/s, 15-17.5 M msg/CPU-s
//   --self-test --connections 1000 --self-test-batch 16 : 3.4 M msg/s, 7.1 M msg/CPU-s
//   --self-test --connections 1000 --self-test-batch 1  : 0.33-0.72 M msg/s, 0.55-0.77 M msg/CPU-s
// With batching the sender is usually the limit (receiver below 100% CPU), so msg/CPU-s is the
// better ceiling estimate. With one message per recv() the cost is the kernel's (perf: recv,
// TCP ACK, epoll); the loadgen's own user-space code is about 2% of samples.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <fmt/format.h>

#include "client.hpp"
#include "common.hpp"
#include "histogram.hpp"
#include "selftest.hpp"

namespace fanout::loadgen {
namespace {

[[noreturn]] void usage_error(const std::string& msg) {
  fmt::print(stderr, "fanout-loadgen: {}\n(see the comment at the top of tools/loadgen/main.cpp)\n", msg);
  std::exit(2);
}

void print_usage() {
  fmt::print(stderr,
             "usage: fanout-loadgen --host H --port N [--path /ws] --connections N [--procs P]\n"
             "         (--topics T1,T2,... | --topics-per-conn K --topic-count M) [--subscribe-mode json|url]\n"
             "         [--duration-s S] [--expect-per-topic N] [--connect-rate N/s] [--src-base 127.0.0.2]\n"
             "         [--src-count 250] [--slow-fraction F] [--slow-read-bps B] [--slow-rcvbuf BYTES]\n"
             "         [--json-out FILE] [--ready-file FILE] [--max-inflight N] [--setup-timeout-s S]\n"
             "         [--storm-at-s S]   (all connections drop at S and recover with since)\n"
             "         [--no-wait-acks] [--tls [--tls-ca-file CA] [--tls-ciphersuites LIST]] [--deflate]\n"
             "         [--uid-prefix P] [--rpc-rate R]\n"
             "         [--interval-ms N]\n"
             "       fanout-loadgen --self-test [--connections N] [--duration-s S] [--self-test-bytes B]\n"
             "         [--self-test-batch N]\n");
}

uint64_t to_u64(const std::string& flag, std::string_view v) {
  uint64_t out = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) usage_error(fmt::format("bad value for {}: '{}'", flag, v));
  return out;
}

double to_double(const std::string& flag, std::string_view v) {
  try {
    size_t used = 0;
    const std::string s(v);
    const double d = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(d) || d < 0) throw std::invalid_argument("x");
    return d;
  } catch (const std::exception&) {
    usage_error(fmt::format("bad value for {}: '{}'", flag, v));
  }
}

std::vector<std::string> split_csv(std::string_view v) {
  std::vector<std::string> out;
  size_t s = 0;
  while (s <= v.size()) {
    size_t e = v.find(',', s);
    if (e == std::string_view::npos) e = v.size();
    if (e > s) out.emplace_back(v.substr(s, e - s));
    s = e + 1;
  }
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v;
    bool has_v = false;
    if (a.rfind("--", 0) != 0) usage_error(fmt::format("unexpected argument '{}'", a));
    if (const size_t eq = a.find('='); eq != std::string::npos) {
      v = a.substr(eq + 1);
      a.resize(eq);
      has_v = true;
    }
    auto val = [&]() -> std::string {
      if (has_v) return v;
      if (i + 1 >= argc) usage_error(fmt::format("{} needs a value", a));
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      print_usage();
      std::exit(0);
    } else if (a == "--self-test") {
      o.self_test = true;
    } else if (a == "--no-wait-acks") {
      o.wait_acks = false;
    } else if (a == "--host") {
      o.host = val();
    } else if (a == "--port") {
      const uint64_t p = to_u64(a, val());
      if (p > 65535) usage_error("--port out of range");
      o.port = static_cast<uint16_t>(p);
    } else if (a == "--path") {
      o.path = val();
      if (o.path.empty() || o.path[0] != '/') usage_error("--path must start with '/'");
    } else if (a == "--connections") {
      o.connections = to_u64(a, val());
      o.connections_given = true;
    } else if (a == "--procs") {
      o.procs = static_cast<unsigned>(to_u64(a, val()));
    } else if (a == "--topics") {
      o.topics = split_csv(val());
    } else if (a == "--topics-per-conn") {
      o.topics_per_conn = static_cast<unsigned>(to_u64(a, val()));
    } else if (a == "--topic-count") {
      o.topic_count = static_cast<unsigned>(to_u64(a, val()));
    } else if (a == "--subscribe-mode") {
      const std::string m = val();
      if (m == "json")
        o.url_mode = false;
      else if (m == "url")
        o.url_mode = true;
      else
        usage_error("--subscribe-mode must be json or url");
    } else if (a == "--duration-s") {
      o.duration_s = to_double(a, val());
      o.duration_given = true;
    } else if (a == "--expect-per-topic") {
      o.expect_per_topic = to_u64(a, val());
      o.has_expect = true;
    } else if (a == "--connect-rate") {
      std::string r = val();
      if (r.size() > 2 && r.compare(r.size() - 2, 2, "/s") == 0) r.resize(r.size() - 2);
      o.connect_rate = to_double(a, r);
    } else if (a == "--src-base") {
      o.src_base = val();
    } else if (a == "--src-count") {
      o.src_count = static_cast<unsigned>(to_u64(a, val()));
    } else if (a == "--slow-fraction") {
      o.slow_fraction = to_double(a, val());
      if (o.slow_fraction > 1) usage_error("--slow-fraction must be in [0, 1]");
    } else if (a == "--slow-read-bps") {
      o.slow_read_bps = to_double(a, val());
    } else if (a == "--slow-rcvbuf") {
      o.slow_rcvbuf = static_cast<int>(std::min<uint64_t>(to_u64(a, val()), 1u << 30));
    } else if (a == "--json-out") {
      o.json_out = val();
    } else if (a == "--ready-file") {
      o.ready_file = val();
    } else if (a == "--max-inflight") {
      o.max_inflight = static_cast<unsigned>(std::max<uint64_t>(1, to_u64(a, val())));
    } else if (a == "--storm-at-s") {
      o.storm_at_s = to_double(a, val());
    } else if (a == "--deflate") {
      o.deflate = true;
    } else if (a == "--tls") {
      o.tls = true;
    } else if (a == "--tls-ca-file") {
      o.tls_ca_file = val();
      o.tls = true;
    } else if (a == "--tls-ciphersuites") {
      o.tls_ciphersuites = val();
    } else if (a == "--interval-ms") {
      o.interval_ms = static_cast<uint64_t>(to_double(a, val()));
    } else if (a == "--uid-prefix") {
      o.uid_prefix = val();
    } else if (a == "--rpc-rate") {
      o.rpc_rate = to_double(a, val());
    } else if (a == "--setup-timeout-s") {
      o.setup_timeout_s = to_double(a, val());
    } else if (a == "--self-test-bytes") {
      o.self_test_bytes = static_cast<unsigned>(to_u64(a, val()));
    } else if (a == "--self-test-batch") {
      o.self_test_batch = static_cast<unsigned>(std::max<uint64_t>(1, to_u64(a, val())));
    } else {
      usage_error(fmt::format("unknown flag '{}'", a));
    }
  }
  return o;
}

TopicPlan make_plan(const Options& o) {
  TopicPlan plan;
  if (o.topics_per_conn != 0 || o.topic_count != 0) {
    if (o.topics_per_conn == 0 || o.topic_count == 0)
      usage_error("--topics-per-conn and --topic-count must be given together");
    if (o.topics_per_conn > o.topic_count) usage_error("--topics-per-conn must be <= --topic-count");
    if (!o.topics.empty()) usage_error("--topics conflicts with --topics-per-conn/--topic-count");
    plan.names.reserve(o.topic_count);
    for (unsigned t = 0; t < o.topic_count; ++t) plan.names.push_back(fmt::format("t{}", t));
    plan.per_conn = o.topics_per_conn;
    plan.round_robin = true;
  } else {
    plan.names = o.topics.empty() ? std::vector<std::string>{"t0"} : o.topics;
    std::vector<std::string> sorted = plan.names;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) usage_error("duplicate topic in --topics");
    plan.per_conn = static_cast<uint32_t>(plan.names.size());
  }
  return plan;
}

Target make_target(const Options& o) {
  Target t;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(o.port);
  if (const int rc = ::getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0 || res == nullptr)
    usage_error(fmt::format("cannot resolve {}: {}", o.host, ::gai_strerror(rc)));
  std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
  t.addr_len = res->ai_addrlen;
  t.family = res->ai_family;
  ::freeaddrinfo(res);
  t.host_header = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) + ":" + port;
  if (o.src_count > 0 && !o.src_base.empty()) {
    in_addr a{};
    if (::inet_pton(AF_INET, o.src_base.c_str(), &a) != 1) usage_error("--src-base must be an IPv4 address");
    if (t.family == AF_INET) {
      t.bind_src = true;
      t.src_base = ntohl(a.s_addr);
      t.src_count = o.src_count;
    } else {
      fmt::print(stderr, "fanout-loadgen: target is not IPv4, not binding source addresses\n");
    }
  }
  return t;
}

struct ChildProc {
  pid_t pid = -1;
  int up = -1;
  int down = -1;
  std::string buf;
  bool ready = false;
  bool got_end = false;
  bool eof = false;
  uint64_t conns = 0;
  uint64_t opened = 0;
  uint64_t failed = 0;
  int status = 0;
};

struct Merged {
  std::map<std::string, uint64_t> k;
  Histogram hist[3];  // fast, slow, rpc round trips
  std::map<int, uint64_t> close_codes;
  std::map<std::string, uint64_t> events, failures, failures_after_open;
  uint64_t last_end_ns = 0;

  uint64_t get(const std::string& name) const {
    const auto it = k.find(name);
    return it == k.end() ? 0 : it->second;
  }

  void add_k(const std::string& name, uint64_t v) {
    auto ends_with = [&](std::string_view suf) {
      return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    auto [it, fresh] = k.emplace(name, v);
    if (fresh) return;
    if (ends_with("_min")) {
      if (v != 0 && (it->second == 0 || v < it->second)) it->second = v;
    } else if (ends_with("_max")) {
      it->second = std::max(it->second, v);
    } else {
      it->second += v;
    }
  }
};

std::vector<std::string_view> tokens(std::string_view line) {
  std::vector<std::string_view> out;
  size_t s = 0;
  while (s < line.size()) {
    size_t e = line.find(' ', s);
    if (e == std::string_view::npos) e = line.size();
    if (e > s) out.push_back(line.substr(s, e - s));
    s = e + 1;
  }
  return out;
}

uint64_t tok_u64(std::string_view v) {
  uint64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

void handle_line(ChildProc& c, std::string_view line, Merged& m) {
  const auto t = tokens(line);
  if (t.empty()) return;
  const std::string_view kind = t[0];
  if (kind == "ready" && t.size() >= 3) {
    c.ready = true;
    c.opened = tok_u64(t[1]);
    c.failed = tok_u64(t[2]);
  } else if (kind == "k" && t.size() >= 3) {
    m.add_k(std::string(t[1]), tok_u64(t[2]));
  } else if (kind == "hm" && t.size() >= 6) {
    m.hist[std::min<uint64_t>(tok_u64(t[1]), 2)].add_meta(tok_u64(t[2]), tok_u64(t[3]), tok_u64(t[4]), tok_u64(t[5]));
  } else if (kind == "h" && t.size() >= 4) {
    m.hist[std::min<uint64_t>(tok_u64(t[1]), 2)].add_bucket(static_cast<size_t>(tok_u64(t[2])), tok_u64(t[3]));
  } else if (kind == "cc" && t.size() >= 3) {
    m.close_codes[static_cast<int>(tok_u64(t[1]))] += tok_u64(t[2]);
  } else if (kind == "ev" && t.size() >= 3) {
    m.events[std::string(t[1])] += tok_u64(t[2]);
  } else if (kind == "fr" && t.size() >= 3) {
    m.failures[std::string(t[1])] += tok_u64(t[2]);
  } else if (kind == "fo" && t.size() >= 3) {
    m.failures_after_open[std::string(t[1])] += tok_u64(t[2]);
  } else if (kind == "end") {
    c.got_end = true;
    m.last_end_ns = std::max(m.last_end_ns, mono_ns());
  }
}

void drain_child(ChildProc& c, Merged& m) {
  char buf[65536];
  const ssize_t n = ::read(c.up, buf, sizeof buf);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
  }
  if (n <= 0) {
    c.eof = true;
    ::close(c.up);
    c.up = -1;
    return;
  }
  c.buf.append(buf, static_cast<size_t>(n));
  size_t s = 0;
  for (;;) {
    const size_t e = c.buf.find('\n', s);
    if (e == std::string::npos) break;
    handle_line(c, std::string_view(c.buf).substr(s, e - s), m);
    s = e + 1;
  }
  c.buf.erase(0, s);
}

std::string json_map(const std::map<std::string, uint64_t>& mp) {
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : mp) {
    fmt::format_to(std::back_inserter(s), "{}\"{}\": {}", first ? "" : ", ", k, v);
    first = false;
  }
  return s + "}";
}

std::string json_latency(const Histogram& h) {
  return fmt::format(
      "{{\"count\": {}, \"p50\": {}, \"p90\": {}, \"p99\": {}, \"p999\": {}, \"max\": {}, \"mean\": {:.1f}}}",
      h.total(), h.percentile(50), h.percentile(90), h.percentile(99), h.percentile(99.9), h.max(), h.mean());
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    fmt::print(stderr, "fanout-loadgen: cannot write {}: {}\n", tmp, std::strerror(errno));
    return;
  }
  std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    fmt::print(stderr, "fanout-loadgen: cannot rename {}: {}\n", tmp, std::strerror(errno));
}

int run(Options o) {
  ::signal(SIGPIPE, SIG_IGN);
  if (o.self_test) {
    if (!o.connections_given) o.connections = 100;
    if (o.procs == 0) o.procs = 1;
    if (!o.duration_given) o.duration_s = 5;
  } else if (o.port == 0) {
    usage_error("--port is required");
  }
  if (o.connections == 0) usage_error("--connections must be > 0");
  const TopicPlan plan = make_plan(o);

  const uint64_t min_procs = (o.connections + k_max_conns_per_proc - 1) / k_max_conns_per_proc;
  uint64_t procs = o.procs == 0 ? min_procs : o.procs;
  if (procs < min_procs) {
    fmt::print(stderr, "fanout-loadgen: {} connections need at least {} processes; using {}\n", o.connections,
               min_procs, min_procs);
    procs = min_procs;
  }
  procs = std::min<uint64_t>(procs, o.connections);

  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    const uint64_t per_proc = (o.connections + procs - 1) / procs;
    if (rl.rlim_cur != RLIM_INFINITY && per_proc + 32 > rl.rlim_cur)
      fmt::print(stderr, "fanout-loadgen: warning: {} connections per process but RLIMIT_NOFILE is {}\n", per_proc,
                 static_cast<uint64_t>(rl.rlim_cur));
  }

  pid_t blaster = -1;
  if (o.self_test) {
    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(lfd, 4096) < 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl) < 0)
      usage_error(fmt::format("self-test listen: {}", std::strerror(errno)));
    o.host = "127.0.0.1";
    o.port = ntohs(sa.sin_port);
    BlasterConfig bc;
    bc.listen_fd = lfd;
    bc.expected = o.connections;
    bc.msg_bytes = o.self_test_bytes;
    bc.batch = o.self_test_batch;
    bc.max_seconds = o.duration_s + 30;
    std::fflush(nullptr);
    blaster = ::fork();
    if (blaster == 0) run_blaster(bc);
    ::close(lfd);
  }

  const Target target = make_target(o);
  const auto slow_total = static_cast<uint64_t>(std::llround(static_cast<double>(o.connections) * o.slow_fraction));

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  const uint64_t t0 = mono_ns();
  std::vector<ChildProc> kids(procs);
  std::vector<int> parent_fds;
  for (uint64_t p = 0; p < procs; ++p) {
    const uint64_t first = p * o.connections / procs;
    const uint64_t last = (p + 1) * o.connections / procs;
    int up[2], down[2];
    if (::pipe2(up, O_CLOEXEC) < 0 || ::pipe2(down, O_CLOEXEC) < 0) usage_error("pipe failed");
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) usage_error(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (int fd : parent_fds) ::close(fd);
      ::close(up[0]);
      ::close(down[1]);
      const double rate = o.connect_rate > 0 ? o.connect_rate / static_cast<double>(procs) : 0.0;
      auto child = std::make_unique<Child>(o, plan, target, first, last - first, slow_total, rate, up[1], down[0]);
      child->run();
    }
    ::close(up[1]);
    ::close(down[0]);
    kids[p].pid = pid;
    kids[p].up = up[0];
    kids[p].down = down[1];
    kids[p].conns = last - first;
    parent_fds.push_back(up[0]);
    parent_fds.push_back(down[1]);
  }

  Merged m;
  bool go_sent = false;
  bool stop_forwarded = false;
  uint64_t t_ready = 0;
  uint64_t opened_at_ready = 0;
  std::vector<pollfd> pfds;
  std::vector<size_t> idx;
  for (;;) {
    pfds.clear();
    idx.clear();
    for (size_t i = 0; i < kids.size(); ++i)
      if (!kids[i].eof) {
        pfds.push_back(pollfd{kids[i].up, POLLIN, 0});
        idx.push_back(i);
      }
    if (pfds.empty()) break;
    const int r = ::poll(pfds.data(), pfds.size(), 200);
    if (r < 0 && errno != EINTR) usage_error("poll failed");
    for (size_t j = 0; r > 0 && j < pfds.size(); ++j)
      if (pfds[j].revents != 0) drain_child(kids[idx[j]], m);
    if (g_stop && !stop_forwarded) {
      stop_forwarded = true;  // children stop and report when their "down" pipe closes
      for (auto& k : kids)
        if (k.down >= 0) {
          ::close(k.down);
          k.down = -1;
        }
    }
    if (!go_sent && std::all_of(kids.begin(), kids.end(), [](const ChildProc& k) { return k.ready || k.eof; })) {
      go_sent = true;
      t_ready = mono_ns();
      for (auto& k : kids) {
        opened_at_ready += k.opened;
        if (k.down >= 0) (void)!::write(k.down, "g", 1);
      }
      if (!o.ready_file.empty()) write_file_atomic(o.ready_file, fmt::format("connections={}\n", opened_at_ready));
      fmt::print(stderr, "ready connections={}\n", opened_at_ready);
      std::fflush(stderr);
    }
  }
  uint64_t crashed = 0;
  for (auto& k : kids) {
    while (::waitpid(k.pid, &k.status, 0) < 0 && errno == EINTR) {
    }
    if (!k.got_end) ++crashed;
    if (k.down >= 0) ::close(k.down);
  }
  if (blaster > 0) {
    ::kill(blaster, SIGTERM);
    while (::waitpid(blaster, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

  // ------------------------------------------------------------------ report
  const uint64_t msgs_fast = m.get("msgs_fast"), msgs_slow = m.get("msgs_slow");
  const uint64_t msgs = msgs_fast + msgs_slow;
  const uint64_t opened_fast = m.get("opened_fast"), opened_slow = m.get("opened_slow");
  uint64_t failed = m.get("failed_fast") + m.get("failed_slow");
  uint64_t conns_fast = m.get("conns_fast");
  for (const auto& k : kids)
    if (!k.got_end) {
      failed += k.conns;
      m.failures["child_crashed"] += k.conns;
    }
  const double connect_ms = t_ready ? static_cast<double>(t_ready - t0) / 1e6 : 0.0;
  const double run_s = (go_sent && m.last_end_ns > t_ready) ? static_cast<double>(m.last_end_ns - t_ready) / 1e9 : 0.0;
  const uint64_t first_us = m.get("first_msg_us_min"), last_us = m.get("last_msg_us_max");
  const double active_s = last_us > first_us ? static_cast<double>(last_us - first_us) / 1e6 : 0.0;
  const double cpu_s = static_cast<double>(m.get("cpu_user_us") + m.get("cpu_sys_us")) / 1e6;
  const bool complete = o.has_expect && crashed == 0 && conns_fast == opened_fast && m.get("failed_fast") == 0 &&
                        m.get("incomplete_fast") == 0;

  std::map<std::string, uint64_t> cc;
  for (const auto& [code, n] : m.close_codes) cc[std::to_string(code)] = n;

  std::string j = "{\n";
  auto out = [&j](std::string_view key, const std::string& value) {
    fmt::format_to(std::back_inserter(j), "{}  \"{}\": {}", j.size() > 2 ? ",\n" : "", key, value);
  };
  auto num = [](auto v) { return fmt::format("{}", v); };
  auto fix = [](double v, int prec) { return fmt::format("{:.{}f}", v, prec); };
  out("connections_requested", num(o.connections));
  out("connections_opened", num(opened_fast + opened_slow));
  out("connections_failed", num(failed));
  out("connections_fast", num(conns_fast));
  out("connections_slow", num(m.get("conns_slow")));
  out("connections_closed_by_server", num(m.get("closed_by_server")));
  out("failures", json_map(m.failures));
  out("failures_after_open", json_map(m.failures_after_open));
  out("procs", num(procs));
  out("topics", num(plan.names.size()));
  out("topics_per_connection", num(plan.per_conn));
  out("subscribe_mode", o.url_mode ? "\"url\"" : "\"json\"");
  out("interval_ms", num(o.interval_ms));
  out("connect_ms", fix(connect_ms, 1));
  out("duration_s", fix(run_s, 3));
  out("messages_received", num(msgs));
  out("messages_received_fast", num(msgs_fast));
  out("messages_received_slow", num(msgs_slow));
  out("bytes_received", num(m.get("bytes_fast") + m.get("bytes_slow")));
  out("messages_per_sec", fix(run_s > 0 ? static_cast<double>(msgs) / run_s : 0.0, 1));
  out("messages_per_sec_active", fix(active_s > 0 ? static_cast<double>(msgs) / active_s : 0.0, 1));
  out("gaps", num(m.get("gaps_fast") + m.get("gaps_slow")));
  out("gaps_fast", num(m.get("gaps_fast")));
  out("gaps_slow", num(m.get("gaps_slow")));
  out("out_of_order", num(m.get("ooo_fast") + m.get("ooo_slow")));
  out("out_of_order_fast", num(m.get("ooo_fast")));
  out("out_of_order_slow", num(m.get("ooo_slow")));
  out("control_events", num(m.get("control_events")));
  out("events", json_map(m.events));
  out("close_codes", json_map(cc));
  out("latency_us", fmt::format("{{\"fast\": {}, \"slow\": {}, \"rpc\": {}}}", json_latency(m.hist[0]),
                                json_latency(m.hist[1]), json_latency(m.hist[2])));
  out("tls", o.tls ? "true" : "false");
  out("tls_handshakes", num(m.get("tls_handshakes")));
  out("rpc_sent", num(m.get("rpc_sent")));
  out("rpc_errors", num(m.get("rpc_errors")));
  out("latency_clamped", num(m.hist[0].clamped() + m.hist[1].clamped()));
  out("negative_latency", num(m.get("negative_latency")));
  out("parse_errors", num(m.get("parse_errors")));
  out("unknown_topic", num(m.get("unknown_topic")));
  out("protocol_errors", num(m.get("protocol_errors")));
  out("fragmented", num(m.get("fragmented")));
  out("pings", num(m.get("pings")));
  out("cpu_s", fix(cpu_s, 3));
  out("max_rss_kb", num(m.get("maxrss_kb_max")));
  out("children_crashed", num(crashed));
  out("expect_per_topic", o.has_expect ? num(o.expect_per_topic) : std::string("null"));
  out("incomplete_fast_connections", num(m.get("incomplete_fast")));
  out("missing_fast", num(m.get("missing_fast")));
  out("incomplete_slow_connections", num(m.get("incomplete_slow")));
  out("missing_slow", num(m.get("missing_slow")));
  out("complete", complete ? "true" : "false");
  if (o.storm_at_s > 0) {
    out("storm_connections", num(m.get("storm_conns")));
    out("storm_resubscribed", num(m.get("storm_resubscribed")));
    out("storm_caught_up", num(m.get("storm_caught_up")));
    out("storm_resync_events", num(m.events.count("resync") ? m.events.at("resync") : 0));
    out("storm_all_resubscribed_ms", num(m.get("storm_resubscribed_ms_max")));
    out("storm_all_caught_up_ms", num(m.get("storm_caught_up_ms_max")));
  }
  j += "\n}\n";

  std::fwrite(j.data(), 1, j.size(), stdout);
  std::fflush(stdout);
  if (!o.json_out.empty()) write_file_atomic(o.json_out, j);
  if (o.self_test) {
    fmt::print(stderr,
               "self-test: {} messages of {} bytes over {} connection(s) in {:.3f} s active: {:.0f} msg/s per process "
               "({:.3f} CPU s, {:.0f} msg per CPU-second)\n",
               msgs, o.self_test_bytes, opened_fast + opened_slow, active_s,
               active_s > 0 ? static_cast<double>(msgs) / active_s / static_cast<double>(procs) : 0.0, cpu_s,
               cpu_s > 0 ? static_cast<double>(msgs) / cpu_s : 0.0);
  }
  return (o.has_expect && !complete) ? 1 : 0;
}

}  // namespace
}  // namespace fanout::loadgen

int main(int argc, char** argv) { return fanout::loadgen::run(fanout::loadgen::parse_args(argc, argv)); }

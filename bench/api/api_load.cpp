// fanout-bench-api: load for the server API (docs/server-api.md): keep-alive connections, each
// sending one POST at a time (closed loop) as fast as the answers come, for a fixed time.
//
//   fanout-bench-api --port 8081 --key KEY [--connections 4] [--seconds 5] [--batch 1] [--topic t]
//                    [--data-bytes 100]
//
// --batch 1 posts /api/publish {"topic":T,"data":"x..."}; --batch N posts /api/batch with N such
// commands. Prints one JSON line: requests/s, commands/s, errors, request latency p50/p99 (µs).
// Plain POSIX sockets and one thread per connection: the loader should not be what is measured
// (bench/server-api runs it; its numbers go to docs/benchmarks.md).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8081;
  std::string key;
  int connections = 4;
  double seconds = 5;
  int batch = 1;
  std::string topic = "bench";
  int data_bytes = 100;
};

struct Result {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  // non-200 answers and dropped connections
  std::vector<std::uint32_t> latency_us;
};

int connect_to(const Options& o) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(o.port));
  ::inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

std::string make_request(const Options& o) {
  const std::string data(static_cast<std::size_t>(o.data_bytes), 'x');
  const auto command = [&](bool with_cmd) {
    return fmt::format(R"({{{}"topic":"{}","data":"{}"}})", with_cmd ? R"("cmd":"publish",)" : "", o.topic, data);
  };
  std::string body;
  if (o.batch <= 1) {
    body = command(false);
  } else {
    body = R"({"commands":[)";
    for (int i = 0; i < o.batch; ++i) body += (i ? "," : "") + command(true);
    body += "]}";
  }
  return fmt::format(
      "POST /api/{} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n"
      "Content-Length: {}\r\n\r\n{}",
      o.batch <= 1 ? "publish" : "batch", o.key, body.size(), body);
}

/// Reads one response; false when the connection ended. `close` when the server said so.
bool read_response(int fd, std::string& buf, int& status, bool& close) {
  for (;;) {
    const auto head_end = buf.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const std::string_view head(buf.data(), head_end);
      status = std::atoi(buf.c_str() + 9);
      std::size_t length = 0;
      if (const auto p = head.find("Content-Length: "); p != std::string_view::npos)
        length = std::strtoull(buf.c_str() + p + 16, nullptr, 10);
      close = head.find("Connection: close") != std::string_view::npos;
      if (buf.size() >= head_end + 4 + length) {
        buf.erase(0, head_end + 4 + length);
        return true;
      }
    }
    char chunk[65536];
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
}

void run(const Options& o, const std::string& request, std::chrono::steady_clock::time_point until, Result& r) {
  int fd = -1;
  std::string buf;
  while (std::chrono::steady_clock::now() < until) {
    if (fd < 0) {
      fd = connect_to(o);
      buf.clear();
      if (fd < 0) {
        ++r.errors;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    int status = 0;
    bool close = false;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()) ||
        !read_response(fd, buf, status, close)) {
      ++r.errors;
      ::close(fd);
      fd = -1;
      continue;
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    r.latency_us.push_back(static_cast<std::uint32_t>(us.count()));
    ++r.requests;
    if (status != 200) ++r.errors;
    if (close) {  // max_http_requests_per_connection reached: a new connection, as a client would
      ::close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--host")
      o.host = v;
    else if (a == "--port")
      o.port = std::atoi(v);
    else if (a == "--key")
      o.key = v;
    else if (a == "--connections")
      o.connections = std::max(1, std::atoi(v));
    else if (a == "--seconds")
      o.seconds = std::atof(v);
    else if (a == "--batch")
      o.batch = std::max(1, std::atoi(v));
    else if (a == "--topic")
      o.topic = v;
    else if (a == "--data-bytes")
      o.data_bytes = std::max(0, std::atoi(v));
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  const auto request = make_request(o);
  std::vector<Result> results(static_cast<std::size_t>(o.connections));
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  const auto until =
      start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.seconds));
  for (auto& r : results) threads.emplace_back([&, rp = &r] { run(o, request, until, *rp); });
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Result all;
  for (auto& r : results) {
    all.requests += r.requests;
    all.errors += r.errors;
    all.latency_us.insert(all.latency_us.end(), r.latency_us.begin(), r.latency_us.end());
  }
  std::sort(all.latency_us.begin(), all.latency_us.end());
  const auto pct = [&](double p) {
    return all.latency_us.empty() ? 0u : all.latency_us[static_cast<std::size_t>(p * (all.latency_us.size() - 1))];
  };
  fmt::print(R"({{"connections":{},"batch":{},"data_bytes":{},"seconds":{:.2f},"requests":{},"errors":{},)"
             R"("requests_per_s":{:.0f},"commands_per_s":{:.0f},"p50_us":{},"p99_us":{}}})"
             "\n",
             o.connections, o.batch, o.data_bytes, elapsed, all.requests, all.errors, all.requests / elapsed,
             all.requests * o.batch / elapsed, pct(0.5), pct(0.99));
  return all.requests > 0 ? 0 : 1;
}

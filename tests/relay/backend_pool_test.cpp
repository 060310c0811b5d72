// The backend proxy's libcurl worker pool (examples/relay/backend_pool) against a small HTTP/1.1
// server on loopback in this process: answers, keep-alive, errors, timeouts, a closed port, a full
// queue and stop().
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend_pool.hpp"

using namespace std::chrono_literals;
using relay::BackendPool;

namespace {

/// HTTP/1.1 with keep-alive: POST /ok echoes the body, /status500 answers 500, /big 10 KB, /slow
/// waits until release() (or 5 s). Counts the connections it accepted.
class TestServer {
 public:
  TestServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~TestServer() {
    release();
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    accept_thread_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    // Joined without the lock: a thread still in /slow's wait must take it again to return.
    for (auto& t : threads_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    wake_.notify_all();
  }

 private:
  void accept_loop() {
    for (;;) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      ++connections_;
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    std::string in;
    char buf[4096];
    for (;;) {
      std::size_t head_end;
      while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
      }
      const std::string head = in.substr(0, head_end);
      std::size_t length = 0;
      if (auto p = head.find("Content-Length: "); p != std::string::npos) length = std::stoul(head.substr(p + 16));
      while (in.size() < head_end + 4 + length) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
      }
      std::string body = in.substr(head_end + 4, length);
      in.erase(0, head_end + 4 + length);
      const std::string path = head.substr(5, head.find(' ', 5) - 5);
      int status = 200;
      if (path == "/status500") status = 500;
      if (path == "/big") body.assign(10'000, 'x');
      if (path == "/slow") {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, 5s, [this] { return released_; });
      }
      const std::string out = "HTTP/1.1 " + std::to_string(status) +
                              " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return;
    }
  }

  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool released_ = false;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

/// Submits and waits for the result.
BackendPool::Result post(BackendPool& pool, std::string_view path, std::string body) {
  auto p = std::make_shared<std::promise<BackendPool::Result>>();
  auto f = p->get_future();
  REQUIRE(pool.submit(path, std::move(body), [p](BackendPool::Result r) { p->set_value(std::move(r)); }));
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

BackendPool::Options options(const std::string& url) {
  BackendPool::Options o;
  o.base_url = url;
  o.workers = 1;
  o.timeout = 2s;
  return o;
}

}  // namespace

TEST_CASE("answers come back and one worker keeps one connection alive") {
  TestServer server;
  BackendPool pool(options(server.url()));
  for (int i = 0; i < 3; ++i) {
    const auto r = post(pool, "/ok", R"({"n":)" + std::to_string(i) + "}");
    CHECK(r.outcome == BackendPool::Outcome::ok);
    CHECK(r.http_status == 200);
    CHECK(r.body == R"({"n":)" + std::to_string(i) + "}");
  }
  CHECK(server.connections() == 1);
  const auto s = pool.stats();
  CHECK(s.sent == 3);
  CHECK(s.ok == 3);
}

TEST_CASE("a non-2xx status, an answer past max_response_bytes, a timeout, a closed port") {
  TestServer server;
  auto o = options(server.url());
  o.max_response_bytes = 1000;
  o.timeout = 300ms;
  BackendPool pool(o);
  auto r = post(pool, "/status500", "{}");
  CHECK(r.outcome == BackendPool::Outcome::http_error);
  CHECK(r.http_status == 500);
  CHECK(post(pool, "/big", "{}").outcome == BackendPool::Outcome::too_large);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(post(pool, "/slow", "{}").outcome == BackendPool::Outcome::timeout);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);  // bounded by the timeout, not by the server

  // A port nobody listens on: bind one, then close it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  BackendPool down(options("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port))));
  r = post(down, "/ok", "{}");
  CHECK(r.outcome == BackendPool::Outcome::unreachable);
  CHECK(!r.error.empty());
}

TEST_CASE("a full queue refuses at once and stop() ends what is still queued") {
  TestServer server;
  auto o = options(server.url());
  o.max_queue = 1;
  o.timeout = 5s;
  BackendPool pool(o);
  std::promise<BackendPool::Outcome> first, second;
  REQUIRE(pool.submit("/slow", "{}", [&](BackendPool::Result r) { first.set_value(r.outcome); }));
  for (int i = 0; i < 1000 && pool.stats().in_flight == 0; ++i) std::this_thread::sleep_for(5ms);
  REQUIRE(pool.stats().in_flight == 1);
  REQUIRE(pool.submit("/slow", "{}", [&](BackendPool::Result r) { second.set_value(r.outcome); }));
  CHECK(!pool.submit("/ok", "{}", [](BackendPool::Result) { FAIL("refused, must not be called"); }));
  CHECK(pool.stats().refused == 1);
  server.release();
  CHECK(first.get_future().get() == BackendPool::Outcome::ok);
  CHECK(second.get_future().get() == BackendPool::Outcome::ok);

  // stop(): the running request finishes, what is queued ends as `stopped`.
  TestServer held;
  BackendPool pool2(options(held.url()));
  std::promise<BackendPool::Outcome> running, queued;
  REQUIRE(pool2.submit("/slow", "{}", [&](BackendPool::Result r) { running.set_value(r.outcome); }));
  for (int i = 0; i < 1000 && pool2.stats().in_flight == 0; ++i) std::this_thread::sleep_for(5ms);
  REQUIRE(pool2.submit("/ok", "{}", [&](BackendPool::Result r) { queued.set_value(r.outcome); }));
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held.release();
  });
  pool2.stop(0ms);
  releaser.join();
  CHECK(queued.get_future().get() == BackendPool::Outcome::stopped);
  CHECK(running.get_future().get() == BackendPool::Outcome::ok);
  CHECK(!pool2.submit("/ok", "{}", [](BackendPool::Result) {}));
}

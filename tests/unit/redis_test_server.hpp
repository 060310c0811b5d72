// A real redis-server for the unit tests: own port (chosen by binding port 0), no persistence unless
// asked, stopped by PID. Plus a blocking hiredis client for the test's own checks.
#pragma once

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fanout_test {

inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class RedisServer {
 public:
  /// `dir` non-empty: append-only file there, so a restart keeps the data.
  explicit RedisServer(std::uint16_t port = 0, std::string dir = {}) : port_(port ? port : free_port()), dir_(dir) {
    start();
  }
  ~RedisServer() { stop(); }

  std::uint16_t port() const { return port_; }

  void start() {
    std::vector<std::string> args{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                                  "--daemonize",  "no",     "--loglevel",          "warning"};
    if (dir_.empty()) {
      args.insert(args.end(), {"--appendonly", "no"});
    } else {
      args.insert(args.end(), {"--appendonly", "yes", "--appendfsync", "always", "--dir", dir_});
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test process that aborts does not leave it behind
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      if (int null = ::open("/dev/null", O_WRONLY); null >= 0) {  // its log is noise in test output
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      ::execvp("redis-server", argv.data());
      ::_exit(127);
    }
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
      if (auto c = client(); c) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("redis-server did not start");
  }

  /// SIGTERM (redis writes its append-only file and exits), then waits; SIGKILL after 10 s.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 1000; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  struct Free {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  using Client = std::unique_ptr<redisContext, Free>;
  Client client() const {
    timeval tv{1, 0};
    Client c(redisConnectWithTimeout("127.0.0.1", port_, tv));
    if (!c || c->err) return nullptr;
    return c;
  }
  /// One command's integer (or -1), for checks like PUBSUB NUMSUB.
  long long integer(const std::vector<std::string>& args) const {
    auto c = client();
    if (!c) return -1;
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.c_str());
      lens.push_back(a.size());
    }
    auto* r =
        static_cast<redisReply*>(redisCommandArgv(c.get(), static_cast<int>(args.size()), argv.data(), lens.data()));
    if (!r) return -1;
    long long v = -1;
    if (r->type == REDIS_REPLY_INTEGER) v = r->integer;
    // PUBSUB NUMSUB answers [channel, count].
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
      v = r->element[1]->integer;
    freeReplyObject(r);
    return v;
  }

 private:
  std::uint16_t port_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace fanout_test

// fanout-send-probe: what one loopback send() costs on this machine, the physical limit of fan-out.
//
//   fanout-send-probe [--connections 1000] [--bytes 200] [--batches 1,8,32,128] [--seconds 2] [--iovecs 0|1]
//
// Opens N loopback TCP connections to itself; a drain thread reads every receiving end with epoll.
// For each batch size K the main thread writes K frames' worth of bytes (K x --bytes) per send(),
// round-robin over the connections, for --seconds. It prints one JSON object: per K, sends/s,
// deliveries/s (= sends/s x K), wall and CPU microseconds per send. A fan-out server cannot beat
// deliveries/s = sends/s x frames per write, so bench/run reports fanout as a fraction of this.
// --iovecs 1 sends each batch as one iovec per frame (sendmsg), as a gather-write of queued frames
// would: at 9,000 connections 32 iovecs cost ~1.2 us more per send than one buffer, 128 ~2.5 us.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fanout-send-probe: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t conns = 1000, bytes = 200;
  double seconds = 2;
  bool iovecs = false;  // one iovec per frame (as a gather-write of queued frames) instead of one buffer
  std::vector<std::size_t> batches{1, 8, 32, 128};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--connections") {
      conns = std::stoul(v);
    } else if (a == "--bytes") {
      bytes = std::stoul(v);
    } else if (a == "--seconds") {
      seconds = std::stod(v);
    } else if (a == "--iovecs") {
      iovecs = v == "1";
    } else if (a == "--batches") {
      batches.clear();
      std::stringstream ss(v);
      for (std::string b; std::getline(ss, b, ',');) batches.push_back(std::stoul(b));
    } else {
      std::fprintf(
          stderr,
          "usage: fanout-send-probe [--connections N] [--bytes B] [--batches 1,8] [--seconds S] [--iovecs 0|1]\n");
      return 2;
    }
  }
  if (argc % 2 == 0 || conns == 0 || conns > 9000 || bytes == 0 || batches.empty()) {
    std::fprintf(stderr, "fanout-send-probe: bad arguments (connections 1..9000, bytes > 0)\n");
    return 2;
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(lfd, 4096) < 0 ||
      ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl) < 0)
    die("listen");
  std::vector<int> senders, receivers;
  for (std::size_t i = 0; i < conns; ++i) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) die("connect");
    const int r = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (r < 0) die("accept");
    const int one = 1;
    ::setsockopt(r, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(c, F_SETFL, O_NONBLOCK);
    senders.push_back(r);  // the server side writes, as a fan-out server does
    receivers.push_back(c);
  }
  ::close(lfd);

  std::atomic<bool> stop{false};
  std::thread drain([&] {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t i = 0; i < receivers.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, receivers[i], &ev);
    }
    std::vector<char> buf(1 << 16);
    epoll_event evs[256];
    while (!stop.load(std::memory_order_relaxed)) {
      const int n = ::epoll_wait(ep, evs, 256, 50);
      for (int k = 0; k < n; ++k)
        while (::recv(receivers[evs[k].data.u64], buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
        }
    }
    ::close(ep);
  });

  std::string out =
      "{\"connections\": " + std::to_string(conns) + ", \"frame_bytes\": " + std::to_string(bytes) + ", \"steps\": [";
  for (std::size_t bi = 0; bi < batches.size(); ++bi) {
    const std::size_t k = batches[bi];
    const std::string payload(k * bytes, 'x');
    std::vector<iovec> iov(k);
    for (std::size_t f = 0; f < k; ++f) iov[f] = {const_cast<char*>(payload.data()) + f * bytes, bytes};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = k;
    std::uint64_t sends = 0, would_block = 0;
    const double c0 = thread_cpu_s();
    const auto t0 = std::chrono::steady_clock::now();
    const auto end = t0 + std::chrono::duration<double>(seconds);
    std::size_t next = 0;
    while (std::chrono::steady_clock::now() < end) {
      for (int j = 0; j < 256; ++j) {  // check the clock every 256 sends
        const ssize_t n = iovecs ? ::sendmsg(senders[next], &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
                                 : ::send(senders[next], payload.data(), payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
          ++sends;
        else
          ++would_block;
        if (++next == senders.size()) next = 0;
      }
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = thread_cpu_s() - c0;
    const double per_s = static_cast<double>(sends) / wall;
    char step[512];
    std::snprintf(step, sizeof step,
                  "%s{\"frames_per_send\": %zu, \"sends\": %llu, \"would_block\": %llu, \"sends_per_s\": %.0f, "
                  "\"deliveries_per_s\": %.0f, \"wall_us_per_send\": %.2f, \"cpu_us_per_send\": %.2f}",
                  bi ? ", " : "", k, static_cast<unsigned long long>(sends),
                  static_cast<unsigned long long>(would_block), per_s, per_s * static_cast<double>(k),
                  sends ? wall * 1e6 / static_cast<double>(sends) : 0.0,
                  sends ? cpu * 1e6 / static_cast<double>(sends) : 0.0);
    out += step;
  }
  out += "]}\n";
  stop = true;
  drain.join();
  for (int fd : senders) ::close(fd);
  for (int fd : receivers) ::close(fd);
  std::fputs(out.c_str(), stdout);
  return 0;
}

// fanout-loadgen: shared helpers and options.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace fanout::loadgen {

inline uint64_t realtime_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

inline uint64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Blocking write of all n bytes (sockets or pipes; SIGPIPE is ignored by every mode).
inline bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

inline const char* errno_name(int e) {
  const char* s = ::strerrorname_np(e);
  return s != nullptr ? s : "EUNKNOWN";
}

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/ws";
  uint64_t connections = 1;
  bool connections_given = false;
  unsigned procs = 0;               // 0: automatic (ceil(connections / k_max_conns_per_proc))
  std::vector<std::string> topics;  // explicit list: every connection subscribes to all of them
  unsigned topics_per_conn = 0;     // with topic_count: K out of t0..t{M-1}, round-robin
  unsigned topic_count = 0;
  bool url_mode = false;
  uint64_t interval_ms = 0;  // > 0: throttled subscriptions ("interval_ms" / ?interval_ms=)
  double duration_s = 10;
  bool duration_given = false;
  bool has_expect = false;
  uint64_t expect_per_topic = 0;
  double connect_rate = 0;  // connections/s over all processes, 0 = as fast as possible
  std::string src_base = "127.0.0.2";
  unsigned src_count = 250;
  double slow_fraction = 0;
  double slow_read_bps = 16384;
  int slow_rcvbuf = 4096;
  std::string json_out;
  std::string ready_file;
  unsigned max_inflight = 512;  // per process: connections in connect/handshake/subscribe at once
  double setup_timeout_s = 0;   // 0: automatic (30 s + connections / rate)
  bool wait_acks = true;
  double storm_at_s = 0;    // reconnect storm: this long into the run every open connection drops and comes
                            // back with "since" = its last seq per topic (0: off)
  std::string uid_prefix;   // connect with ?uid=<prefix><connection index> (a server's on_connect binds it)
  double rpc_rate = 0;      // per connection: {"op":"rpc"} requests/s after the start; their round trip
                            // (reply time minus the ts the request carried) is latency_us.rpc
  bool tls = false;         // wss: TLS (OpenSSL) on every connection
  bool deflate = false;     // offer permessage-deflate; inflate RSV1 messages (no context) before parsing
  std::string tls_ca_file;  // verify the server against this CA; none: no verification (benchmarks)
  // TLS 1.3 suites offered, most preferred first: by default the order Chrome and Firefox offer, so
  // the server picks what it would for a browser (OpenSSL's own default puts AES-256-GCM first).
  std::string tls_ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";
  bool self_test = false;
  unsigned self_test_bytes = 128;
  unsigned self_test_batch = 64;
};

inline constexpr uint64_t k_max_conns_per_proc = 19000;

// Which topics a connection subscribes to. Connection i subscribes to the K topics
// names[(base_i + j) % M] for j in [0, K), base_i = (i * K) % M in round-robin mode, 0 otherwise
// (then K == M). The slot of a topic id inside a connection is therefore (gid - base) mod M.
struct TopicPlan {
  std::vector<std::string> names;
  uint32_t per_conn = 0;
  bool round_robin = false;

  uint32_t base_for(uint64_t conn) const {
    return round_robin ? static_cast<uint32_t>((conn * per_conn) % names.size()) : 0u;
  }
  uint32_t gid(uint32_t base, uint32_t slot) const {
    return static_cast<uint32_t>((static_cast<uint64_t>(base) + slot) % names.size());
  }
};

// Evenly spread exactly slow_count slow connections over n.
inline bool is_slow(uint64_t i, uint64_t n, uint64_t slow_count) {
  return slow_count != 0 && (i * slow_count) / n != ((i + 1) * slow_count) / n;
}

}  // namespace fanout::loadgen

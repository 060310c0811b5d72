// fanout-loadgen --self-test: a trivial local sender ("blaster") used to measure how many
// messages/s one loadgen process can receive and parse.
//
// The blaster is a separate process (so it runs on the other core): it accepts the expected
// number of connections one at a time (blocking), completes the WebSocket handshake, acks
// every subscribed topic with {"event":"subscribe","arg":"<t>"}, and then, until every client
// has gone or max_seconds passed, repeatedly builds a batch of `batch` payloads per topic in
// the README format and writes that batch to every subscriber with one blocking send(). The
// sender's cost per delivered message is one memcpy plus 1/batch of a syscall, so with
// batch >= 16 the receiving loadgen process is the bottleneck and its messages/s is the ceiling.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cctype>
#include <csignal>
#include <iterator>

#include <fmt/format.h>
#include <simdjson.h>

#include "common.hpp"
#include "wsutil.hpp"

namespace fanout::loadgen {

struct BlasterConfig {
  int listen_fd = -1;
  uint64_t expected = 0;
  unsigned msg_bytes = 128;
  unsigned batch = 64;
  double max_seconds = 60;
};

// The topics of {"op":"subscribe","args":["a","b"]} (simdjson); empty when it is not that.
inline std::vector<std::string> subscribe_topics(std::string_view payload) {
  simdjson::dom::parser parser;
  simdjson::dom::array args;
  if (parser.parse(payload.data(), payload.size())["args"].get_array().get(args)) return {};
  std::vector<std::string> topics;
  for (simdjson::dom::element arg : args) {
    std::string_view topic;
    if (arg.get_string().get(topic)) return {};
    topics.emplace_back(topic);
  }
  return topics;
}

// Reads one WebSocket request (and, without ?subscribe=, one masked subscribe frame); returns
// the topics, or an empty vector on failure.
inline std::vector<std::string> blaster_handshake(int fd) {
  std::string in;
  char buf[4096];
  size_t hend;
  while ((hend = in.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || in.size() > 65536) return {};
    in.append(buf, static_cast<size_t>(n));
  }
  std::string lower = in.substr(0, hend);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const size_t kpos = lower.find("\r\nsec-websocket-key:");
  if (kpos == std::string::npos || in.compare(0, 4, "GET ") != 0) return {};
  size_t vs = kpos + 20;
  while (vs < hend && in[vs] == ' ') ++vs;
  size_t ve = in.find("\r\n", vs);
  std::string key = in.substr(vs, ve - vs);
  while (!key.empty() && key.back() == ' ') key.pop_back();
  const std::string path = in.substr(4, in.find(' ', 4) - 4);
  const std::string resp =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
      websocket_accept(key) + "\r\n\r\n";
  if (!write_all(fd, resp.data(), resp.size())) return {};

  std::vector<std::string> topics;
  const size_t q = path.find("subscribe=");
  if (q != std::string::npos) {
    size_t s = q + 10;
    while (s < path.size() && path[s] != '&') {
      size_t e = path.find_first_of(",&", s);
      if (e == std::string::npos) e = path.size();
      if (e > s) topics.push_back(path.substr(s, e - s));
      s = e < path.size() && path[e] == ',' ? e + 1 : e;
    }
    return topics;
  }
  // JSON mode: one masked text frame {"op":"subscribe","args":["a","b"]}
  std::string f = in.substr(hend + 4);
  for (;;) {
    if (f.size() >= 2) {
      const auto* p = reinterpret_cast<const unsigned char*>(f.data());
      uint64_t len = p[1] & 0x7f;
      size_t hdr = 2;
      if (len == 126 && f.size() >= 4) {
        len = (uint64_t{p[2]} << 8) | p[3];
        hdr = 4;
      } else if (len == 127) {
        return {};
      }
      hdr += 4;
      if (f.size() >= hdr + len) {
        std::string payload = f.substr(hdr, len);
        for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ f[hdr - 4 + (i & 3)]);
        return subscribe_topics(payload);
      }
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    f.append(buf, static_cast<size_t>(n));
  }
}

[[noreturn]] inline void run_blaster(const BlasterConfig& cfg) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::signal(SIGPIPE, SIG_IGN);
  std::map<std::string, std::vector<int>> subs;
  uint64_t accepted = 0;
  while (accepted < cfg.expected) {
    pollfd pf{cfg.listen_fd, POLLIN, 0};
    if (::poll(&pf, 1, 30000) <= 0) break;
    const int fd = ::accept4(cfg.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++accepted;
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const auto topics = blaster_handshake(fd);
    if (topics.empty()) {
      ::close(fd);
      continue;
    }
    std::string acks;
    for (const auto& t : topics) {
      const std::string ack = "{\"event\":\"subscribe\",\"arg\":\"" + t + "\"}";
      append_frame_header(acks, 0x1, ack.size(), false, 0);
      acks += ack;
      subs[t].push_back(fd);
    }
    write_all(fd, acks.data(), acks.size());
  }

  std::map<std::string, uint64_t> seqs;
  std::string batch, payload;
  const uint64_t end = mono_ns() + static_cast<uint64_t>(cfg.max_seconds * 1e9);
  bool any = true;
  while (any && mono_ns() < end) {
    any = false;
    for (auto& [topic, fds] : subs) {
      if (fds.empty()) continue;
      any = true;
      batch.clear();
      const uint64_t ts = realtime_us();
      uint64_t& seq = seqs[topic];
      for (unsigned b = 0; b < cfg.batch; ++b) {
        payload.clear();
        fmt::format_to(std::back_inserter(payload), "{{\"seq\":{},\"ts\":{},\"topic\":\"{}\",\"pad\":\"", ++seq, ts,
                       topic);
        if (payload.size() + 2 < cfg.msg_bytes) payload.append(cfg.msg_bytes - payload.size() - 2, 'x');
        payload += "\"}";
        append_frame_header(batch, 0x1, payload.size(), false, 0);
        batch += payload;
      }
      size_t w = 0;
      for (size_t r = 0; r < fds.size(); ++r)
        if (write_all(fds[r], batch.data(), batch.size())) fds[w++] = fds[r];
      fds.resize(w);
    }
  }
  ::_exit(0);
}

}  // namespace fanout::loadgen

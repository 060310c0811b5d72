// fanout-baseline: the WebSocket fan-out server most people would write first, used by bench/run as
// the same-run reference so that fanout's figures are ratios, not absolutes on a noisy machine.
//
// Plain asio (one thread, one io_context) and wslay, nothing more. wslay parses what clients send
// (masking, fragments, control frames); every delivery builds the frame afresh for each client (an
// allocation and a copy of header + payload) and writes it with its own async_write: one send() per
// frame, no gather-write, no corking, which is what node `ws` and GatewayWorker do. A client's queue is
// capped at --max-queued-msgs frames (newer ones are dropped and counted) so a stalled client cannot
// take the machine's memory; the cap plays the role of uWebSockets' per-subscriber limit.
//
// It speaks the same stdin control protocol as fanout-test-server (tests/integration/README.md), so
// bench/run drives both the same way:
//   port=<N>                                  printed once listening
//   rate <topic> <per_sec> <bytes> <seconds>  -> rate-started <topic>, later rate-done <topic> <last_seq>
//   rate-multi <count> <per_sec> <bytes> <seconds>  topics t0..t<count-1>, each at per_sec
//                                             -> rate-started multi, later rate-done multi <total>
//   wait-subscribers <n> <timeout_ms>         -> subscribers <count>
//   stats                                     -> one line of JSON (same keys as fanout-test-server)
//   quit                                      -> bye
// Clients subscribe with {"op":"subscribe","args":["t1",...]} (answered {"event":"subscribe","arg":"t1"})
// or with /path?subscribe=t1,t2.
#include <malloc.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using asio::ip::tcp;

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

std::string accept_key(std::string_view key) {
  const std::string in = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), digest, &len, EVP_sha1(), nullptr);
  unsigned char b64[64];
  const int n = EVP_EncodeBlock(b64, digest, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(n));
}

std::string header_value(std::string_view head, std::string_view name) {
  std::size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    if (head.size() - pos < name.size() + 1) break;
    if (strncasecmp(head.data() + pos, name.data(), name.size()) == 0 && head[pos + name.size()] == ':') {
      std::size_t v = pos + name.size() + 1;
      while (v < head.size() && head[v] == ' ') ++v;
      const std::size_t e = head.find("\r\n", v);
      return std::string(head.substr(v, e - v));
    }
  }
  return {};
}

// Quoted strings after "args":[ ... ] in a subscribe request; enough for the load generator.
std::vector<std::string> subscribe_args(std::string_view msg) {
  std::vector<std::string> out;
  if (msg.find("\"subscribe\"") == std::string_view::npos) return out;
  std::size_t p = msg.find("\"args\"");
  if (p == std::string_view::npos) return out;
  p = msg.find('[', p);
  const std::size_t end = msg.find(']', p);
  if (p == std::string_view::npos || end == std::string_view::npos) return out;
  while (true) {
    const std::size_t a = msg.find('"', p + 1);
    if (a == std::string_view::npos || a > end) break;
    const std::size_t b = msg.find('"', a + 1);
    if (b == std::string_view::npos || b > end) break;
    out.emplace_back(msg.substr(a + 1, b - a - 1));
    p = b;
  }
  return out;
}

struct Stats {
  std::uint64_t delivered = 0, writes = 0, dropped = 0, subscriptions = 0, sessions = 0;
};

class Server;

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(Server& s, tcp::socket sock) : server_(s), sock_(std::move(sock)) {}
  ~Client() {
    if (ctx_ != nullptr) wslay_event_context_free(ctx_);
  }
  void start() { read_head(); }
  void deliver(const std::string& msg);
  void close();
  const std::vector<std::string>& topics() const { return topics_; }

 private:
  void read_head();
  void on_head();
  void subscribe(const std::vector<std::string>& topics);
  void queue_text(std::string_view msg);
  void read();   // wait until readable, then let wslay parse what arrived
  void write();  // one frame per async_write, until the queue is empty

  static ssize_t recv_cb(wslay_event_context_ptr, uint8_t* buf, size_t len, int, void* self);
  static ssize_t send_cb(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* self);
  static void msg_cb(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* self);

  Server& server_;
  tcp::socket sock_;
  wslay_event_context_ptr ctx_ = nullptr;
  std::string head_;
  std::array<char, 2048> buf_{};
  std::vector<std::string> topics_;
  std::deque<std::string> out_;  // whole frames, and the bytes wslay wants sent (pongs, close replies)
  bool writing_ = false, closed_ = false;
};

class Server {
 public:
  Server(asio::io_context& io, std::size_t max_queued) : io_(io), acceptor_(io), max_queued_(max_queued) {
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(4096);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket sock) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {  // out of descriptors: wait instead of spinning
        pause_ = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(100));
        pause_->async_wait([this](const asio::error_code&) { accept(); });
        return;
      }
      auto c = std::make_shared<Client>(*this, std::move(sock));
      clients_.insert(c);
      ++stats.sessions;
      c->start();
      accept();
    });
  }
  void publish(const std::string& topic, const std::string& msg) {
    const auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    // Copy the vector: a failing send may close a client and edit the member list.
    const std::vector<Client*> members = it->second;
    for (Client* c : members) c->deliver(msg);
  }
  void add_member(const std::string& topic, Client* c) {
    topics_[topic].push_back(c);
    ++stats.subscriptions;
  }
  void remove(Client* c) {
    for (const auto& t : c->topics()) {
      auto& v = topics_[t];
      v.erase(std::remove(v.begin(), v.end(), c), v.end());
      --stats.subscriptions;
    }
    asio::post(io_, [this, c] {  // destroy after the current handler returns
      for (auto it = clients_.begin(); it != clients_.end(); ++it)
        if (it->get() == c) {
          clients_.erase(it);
          --stats.sessions;
          break;
        }
    });
  }
  void stop() {
    asio::error_code ec;
    acceptor_.close(ec);
    const std::vector<std::shared_ptr<Client>> all(clients_.begin(), clients_.end());
    for (const auto& c : all) c->close();
  }
  std::size_t max_queued() const { return max_queued_; }
  Stats stats;  // touched only on the io thread

 private:
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::unique_ptr<asio::steady_timer> pause_;
  std::size_t max_queued_;
  std::unordered_set<std::shared_ptr<Client>> clients_;
  std::unordered_map<std::string, std::vector<Client*>> topics_;
};

void Client::read_head() {
  sock_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
    if (ec) return self->close();
    self->head_.append(self->buf_.data(), n);
    if (self->head_.find("\r\n\r\n") != std::string::npos) return self->on_head();
    if (self->head_.size() > 8192) return self->close();
    self->read_head();
  });
}

void Client::on_head() {
  const std::string key = header_value(head_, "Sec-WebSocket-Key");
  if (key.empty()) return close();
  std::vector<std::string> url_topics;
  const std::size_t line_end = head_.find("\r\n");
  const std::size_t q = head_.find("?subscribe=");
  if (q != std::string::npos && q < line_end) {
    const std::size_t e = head_.find(' ', q);
    std::string list = head_.substr(q + 11, e - q - 11);
    std::stringstream ss(list);
    for (std::string t; std::getline(ss, t, ',');)
      if (!t.empty()) url_topics.push_back(t);
  }
  head_.clear();
  head_.shrink_to_fit();
  wslay_event_callbacks cbs{recv_cb, send_cb, nullptr, nullptr, nullptr, nullptr, msg_cb};
  wslay_event_context_server_init(&ctx_, &cbs, this);
  auto resp = std::make_shared<std::string>(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
      accept_key(key) + "\r\n\r\n");
  asio::async_write(sock_, asio::buffer(*resp),
                    [self = shared_from_this(), resp, url_topics](const asio::error_code& ec, std::size_t) {
                      if (ec) return self->close();
                      self->sock_.non_blocking(true);
                      if (!url_topics.empty()) self->subscribe(url_topics);
                      self->read();
                    });
}

void Client::subscribe(const std::vector<std::string>& topics) {
  for (const auto& t : topics) {
    if (std::find(topics_.begin(), topics_.end(), t) != topics_.end()) continue;
    topics_.push_back(t);
    server_.add_member(t, this);
    queue_text(R"({"event":"subscribe","arg":")" + t + "\"}");
  }
}

void Client::queue_text(std::string_view msg) {
  std::string frame;
  frame.reserve(msg.size() + 10);
  frame.push_back(static_cast<char>(0x81));  // FIN, text; server frames are not masked
  if (msg.size() < 126) {
    frame.push_back(static_cast<char>(msg.size()));
  } else if (msg.size() < 65536) {
    frame.push_back(126);
    frame.push_back(static_cast<char>(msg.size() >> 8));
    frame.push_back(static_cast<char>(msg.size() & 0xff));
  } else {
    frame.push_back(127);
    for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((msg.size() >> shift) & 0xff));
  }
  frame.append(msg);
  out_.push_back(std::move(frame));
  write();
}

void Client::deliver(const std::string& msg) {
  if (closed_ || ctx_ == nullptr) return;
  if (out_.size() >= server_.max_queued()) {
    ++server_.stats.dropped;
    return;
  }
  ++server_.stats.delivered;
  queue_text(msg);
}

void Client::write() {
  if (writing_ || closed_ || out_.empty()) return;
  writing_ = true;
  asio::async_write(sock_, asio::buffer(out_.front()),
                    [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                      self->writing_ = false;
                      ++self->server_.stats.writes;
                      if (ec) return self->close();
                      self->out_.pop_front();
                      if (self->out_.empty() && !wslay_event_want_read(self->ctx_))
                        return self->close();  // close handshake done
                      self->write();
                    });
}

void Client::read() {
  sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->closed_) return self->close();
    if (wslay_event_recv(self->ctx_) != 0) return self->close();
    if (wslay_event_want_write(self->ctx_) && wslay_event_send(self->ctx_) != 0) return self->close();
    self->write();
    if (wslay_event_want_read(self->ctx_))
      self->read();
    else if (self->out_.empty() && !self->writing_)
      self->close();
  });
}

void Client::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ec;
  sock_.close(ec);
  server_.remove(this);
}

ssize_t Client::recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* self) {
  auto* c = static_cast<Client*>(self);
  const ssize_t n = ::recv(c->sock_.native_handle(), buf, len, MSG_DONTWAIT);
  if (n > 0) return n;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
  else
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

ssize_t Client::send_cb(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* self) {
  static_cast<Client*>(self)->out_.emplace_back(reinterpret_cast<const char*>(data), len);
  return static_cast<ssize_t>(len);
}

void Client::msg_cb(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* self) {
  auto* c = static_cast<Client*>(self);
  if (arg->opcode != WSLAY_TEXT_FRAME) return;  // wslay answers pings and closes itself
  const std::string_view msg(reinterpret_cast<const char*>(arg->msg), arg->msg_length);
  if (msg.find("\"ping\"") != std::string_view::npos) return c->queue_text(R"({"event":"pong"})");
  c->subscribe(subscribe_args(msg));
}

std::string make_message(const std::string& topic, std::uint64_t seq, std::size_t bytes) {
  std::string msg = "{\"seq\":" + std::to_string(seq) + ",\"ts\":" + std::to_string(now_us()) + ",\"topic\":\"" +
                    topic + "\",\"pad\":\"";
  if (msg.size() + 2 < bytes) msg.append(bytes - msg.size() - 2, 'x');
  msg += "\"}";
  return msg;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t max_queued = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--max-queued-msgs") {
      max_queued = std::stoul(argv[i + 1]);
    } else {
      std::cerr << "usage: fanout-baseline [--max-queued-msgs N]\n";
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::cerr << "usage: fanout-baseline [--max-queued-msgs N]\n";
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  asio::io_context io;
  Server server(io, max_queued);
  server.accept();
  auto guard = asio::make_work_guard(io);
  std::thread loop([&io] { io.run(); });
  say("port=" + std::to_string(server.port()));

  std::atomic<bool> stopping{false};
  std::vector<std::thread> background;
  // One publisher thread per command; messages cross to the io thread with one post each.
  auto run_rate = [&](std::vector<std::string> topics, double per_sec, std::size_t bytes, double seconds,
                      std::string label) {
    const auto start = std::chrono::steady_clock::now();
    const auto rounds = static_cast<std::uint64_t>(per_sec * seconds);
    std::uint64_t seq = 0;
    for (std::uint64_t i = 0; i < rounds && !stopping; ++i) {
      std::this_thread::sleep_until(start + std::chrono::duration<double>(static_cast<double>(i) / per_sec));
      ++seq;
      for (const auto& t : topics)
        asio::post(io, [&server, t, msg = make_message(t, seq, bytes)] { server.publish(t, msg); });
    }
    say("rate-done " + label + " " + std::to_string(seq * (label == "multi" ? topics.size() : 1)));
  };

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "rate") {
      std::string topic;
      double per_sec = 0, seconds = 0;
      std::size_t bytes = 0;
      in >> topic >> per_sec >> bytes >> seconds;
      say("rate-started " + topic);
      background.emplace_back(run_rate, std::vector<std::string>{topic}, per_sec, bytes, seconds, topic);
    } else if (cmd == "rate-multi") {
      std::size_t count = 0, bytes = 0;
      double per_sec = 0, seconds = 0;
      in >> count >> per_sec >> bytes >> seconds;
      std::vector<std::string> topics;
      for (std::size_t t = 0; t < count; ++t) topics.push_back("t" + std::to_string(t));
      say("rate-started multi");
      background.emplace_back(run_rate, topics, per_sec, bytes, seconds, "multi");
    } else if (cmd == "wait-subscribers") {
      std::size_t n = 0;
      long timeout_ms = 0;
      in >> n >> timeout_ms;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      std::uint64_t subs = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        std::promise<std::uint64_t> p;
        asio::post(io, [&] { p.set_value(server.stats.subscriptions); });
        subs = p.get_future().get();
        if (subs >= n) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      say("subscribers " + std::to_string(subs));
    } else if (cmd == "stats") {
      std::promise<Stats> p;
      asio::post(io, [&] { p.set_value(server.stats); });
      const Stats s = p.get_future().get();
      const auto heap = mallinfo2().uordblks;
      say("{\"sessions\":" + std::to_string(s.sessions) + ",\"subscriptions\":" + std::to_string(s.subscriptions) +
          ",\"delivered\":" + std::to_string(s.delivered) + ",\"writes\":" + std::to_string(s.writes) +
          ",\"dropped_newest\":" + std::to_string(s.dropped) + ",\"dropped_oldest\":0,\"rss_kb\":" +
          std::to_string(rss_kb()) + ",\"heap_in_use_bytes\":" + std::to_string(heap) + "}");
    } else if (cmd == "quit") {
      break;
    } else if (!cmd.empty()) {
      say("error unknown command " + cmd);
    }
  }
  stopping = true;
  for (auto& t : background) t.join();
  std::promise<void> stopped;
  asio::post(io, [&] {
    server.stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  guard.reset();
  io.stop();
  loop.join();
  say("bye");
  return 0;
}

// A session over plain TCP. Reads wait for readiness and then read into the shard's scratch buffer,
// so an idle connection owns no read buffer; writes go straight out with sendmsg() and only wait for
// writability when the socket is full (the way uWebSockets corks, with asio's reactor).
#include <sys/socket.h>

#include <cerrno>

#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/session.hpp"

#include <asio/post.hpp>

namespace fanout {
namespace detail {
namespace {

class PlainSession final : public Session {
 public:
  PlainSession(ServerShard& owner, ShardSocket socket, asio::ip::tcp::endpoint remote)
      : Session(owner, std::move(remote)), socket_(std::move(socket)) {}

  void start() {
    self_ = shared_from_this();
    asio::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    start_reading();
  }

  void flush() override {
    if (waiting_writable_ || state_ == State::closed) return;
    const int fd = socket_.native_handle();
    iovec iov[k_max_iov];
    while (!queue_.empty()) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = queue_.gather(iov, k_max_iov, options_.max_write_bytes);
      std::size_t want = 0;
      for (std::size_t i = 0; i < msg.msg_iovlen; ++i) want += iov[i].iov_len;
      // Replayed history carries its original stamp: not a publish-to-write sample.
      const std::int64_t first_published = published_ns_of(queue_.front_unstarted()) >= replayed_until_ns_
                                               ? published_ns_of(queue_.front_unstarted())
                                               : 0;
      const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        // Reset by peer, broken pipe: nobody left to write to. Ended from the loop, since flush()
        // may run inside a delivery walk that must not see the member list change.
        fail_later();
        return;
      }
      ShardCounters::add(shard_.counters.writes, 1);
      sample_write(shard_.counters, first_published);
      on_written(static_cast<std::size_t>(n));
      if (state_ == State::closed) return;
      if (static_cast<std::size_t>(n) < want) break;  // the socket is full
    }
    if (!queue_.empty()) wait_writable();
  }

 protected:
  void start_reading() override {
    socket_.async_wait(asio::socket_base::wait_read,
                       [self = shared_from_this(), this](const asio::error_code& ec) { on_readable(ec); });
  }

  void close_transport() override {
    asio::error_code ec;
    socket_.close(ec);
  }

  void shutdown_send() override {
    asio::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
  }

 private:
  static constexpr std::size_t k_max_iov = 256;

  void on_readable(const asio::error_code& ec) {
    if (state_ == State::closed) return;
    if (ec) {
      on_read_end();
      return;
    }
    auto buf = shard_.read_buffer();
    // A few reads per wakeup, then back to the loop so one chatty client cannot starve the rest.
    for (int round = 0; round < 4; ++round) {
      const ssize_t n = ::recv(socket_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) {
        if (!on_bytes(buf.first(static_cast<std::size_t>(n)))) return;
        if (static_cast<std::size_t>(n) < buf.size()) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      on_read_end();  // EOF or error
      return;
    }
    if (state_ != State::closed) start_reading();
  }

  void fail_later() {
    waiting_writable_ = true;  // nothing more is written
    queue_.clear_unsent();
    asio::post(shard_.context(), [self = shared_from_this(), this] { finish(); });
  }

  void wait_writable() {
    ShardCounters::add(shard_.counters.write_stalls, 1);
    waiting_writable_ = true;
    write_blocked_since_ = std::chrono::steady_clock::now();
    socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this(), this](const asio::error_code& ec) {
      waiting_writable_ = false;
      if (state_ == State::closed) return;
      if (ec) {
        finish();
        return;
      }
      flush();
    });
  }

  ShardSocket socket_;
};

}  // namespace

std::shared_ptr<Session> make_plain_session(ServerShard& owner, ShardSocket socket) {
  asio::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  auto s = std::make_shared<PlainSession>(owner, std::move(socket), remote);
  owner.add(s.get());
  s->start();
  return s;
}

}  // namespace detail
}  // namespace fanout

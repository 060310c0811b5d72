// A session over plain TCP. Its descriptor waits in the shard's Poller (not asio's reactor, which
// costs more per idle connection: detail/poller.hpp); reads go into the shard's scratch buffer, so an idle connection
// owns no read buffer; writes go straight out with sendmsg() and only wait for writability when the
// socket is full (the way uWebSockets corks).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fanout/detail/gather.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/session.hpp"

#include <asio/post.hpp>

namespace fanout {
namespace detail {
namespace {

class PlainSession final : public Session, public Pollable {
 public:
  PlainSession(ServerShard& owner, int fd, asio::ip::tcp::endpoint remote)
      : Session(owner, std::move(remote)), fd_(fd) {}
  ~PlainSession() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void start() {
    self_ = shared_from_this();
    const int flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (owner_.shard.poller().add(fd_, this, false)) finish();
  }

  void flush() override {
    if (waiting_writable_ || state_ == State::closed) return;
    pull_due();
    const int fd = fd_;
    iovec iov[k_max_iov];
    while (!queue_.empty()) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = gather(queue_, iov, k_max_iov, options_.max_write_bytes);
      std::size_t want = 0;
      for (std::size_t i = 0; i < msg.msg_iovlen; ++i) want += iov[i].iov_len;
      // Many small frames go out as one buffer: the kernel's per-iovec cost (fanout-send-probe
      // --iovecs, docs/benchmarks.md) is more than copying a small frame that is in cache.
      iovec one;
      if (msg.msg_iovlen > 1 && want <= k_copy_limit && want <= msg.msg_iovlen * k_copy_frame_bytes) {
        std::byte* out = owner_.shard.write_buffer().data();
        for (std::size_t i = 0, at = 0; i < msg.msg_iovlen; at += iov[i].iov_len, ++i)
          std::memcpy(out + at, iov[i].iov_base, iov[i].iov_len);
        one = {out, want};
        msg.msg_iov = &one;
        msg.msg_iovlen = 1;
      }
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
      ShardCounters::add(owner_.shard.counters.writes, 1);
      sample_write(owner_.shard.counters, first_published);
      on_written(static_cast<std::size_t>(n));
      if (state_ == State::closed) return;
      if (static_cast<std::size_t>(n) < want) break;  // the socket is full
    }
    if (!queue_.empty()) wait_writable();
  }

 protected:
  void close_transport() override {
    if (fd_ < 0) return;
    owner_.shard.poller().remove(fd_);
    if (abort_close_) {
      const linger reset{.l_onoff = 1, .l_linger = 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    ::close(fd_);
    fd_ = -1;
  }

  void shutdown_send() override {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }

  void set_reading(bool) override { update_interest(); }

 private:
  static constexpr std::size_t k_max_iov = 256;
  static constexpr std::size_t k_copy_limit = Shard::k_write_buffer_size;  // bytes copied into one buffer at most
  static constexpr std::size_t k_copy_frame_bytes = 512;  // ... and only when frames average at most this

  void on_poll(std::uint32_t events) override {
    if (state_ == State::closed) return;
    if ((events & EPOLLOUT) && waiting_writable_) {
      waiting_writable_ = false;
      update_interest();
      flush();
      if (state_ == State::closed) return;
    }
    if (read_paused_) {
      // Not reading: only a hang-up or an error gets here, and then nobody is left to write to.
      if (events & (EPOLLHUP | EPOLLERR)) on_read_end();
      return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable();
  }

  void update_interest() {
    if (fd_ >= 0 && owner_.shard.poller().modify(fd_, this, waiting_writable_, !read_paused_)) fail_later();
  }

  void on_readable() {
    auto buf = owner_.shard.read_buffer();
    // A few reads per wakeup, then back to the loop so one chatty client cannot starve the rest
    // (level-triggered: what is left wakes us again).
    for (int round = 0; round < 4; ++round) {
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) {
        if (!on_bytes(buf.first(static_cast<std::size_t>(n))) || read_paused_) return;
        if (static_cast<std::size_t>(n) < buf.size()) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      on_read_end();  // EOF or error
      return;
    }
  }

  void fail_later() {
    waiting_writable_ = true;  // nothing more is written
    queue_.clear_unsent();
    asio::post(owner_.shard.context(), [self = shared_from_this(), this] { finish(); });
  }

  void wait_writable() {
    ShardCounters::add(owner_.shard.counters.write_stalls, 1);
    waiting_writable_ = true;
    note_blocked();
    update_interest();
  }

  int fd_;
};

}  // namespace

std::shared_ptr<Session> make_plain_session(ServerShard& owner, ShardSocket socket) {
  asio::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  const int fd = socket.release(ec);  // leaves asio's reactor; the shard's Poller takes over
  if (ec) return nullptr;
  auto s = std::make_shared<PlainSession>(owner, fd, remote);
  owner.add(s.get());
  s->start();
  return s;
}

}  // namespace detail
}  // namespace fanout

// A session over plain TCP. Its descriptor waits in the shard's Poller (not asio's reactor, which
// costs more per idle connection: detail/poller.hpp); reads go into the shard's scratch buffer, so an idle connection
// owns no read buffer; writes go straight out with sendmsg() and only wait for writability when the
// socket is full (the way uWebSockets corks).
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "fanout/detail/gather.hpp"
#include "fanout/detail/polled_session.hpp"

namespace fanout {
namespace detail {
namespace {

class PlainSession final : public PolledSession<PlainSession> {
 public:
  using PolledSession::PolledSession;

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
      const std::int64_t first_published = head_published_ns();
      const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fail_later();  // reset by peer, broken pipe: nobody left to write to
        return;
      }
      count_write(first_published);
      on_written(static_cast<std::size_t>(n));
      if (state_ == State::closed) return;
      if (static_cast<std::size_t>(n) < want) break;  // the socket is full
    }
    if (!queue_.empty()) wait_writable();
  }

 protected:
  void set_reading(bool) override { update_interest(); }

 private:
  friend PolledSession;

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
};

}  // namespace

std::shared_ptr<Session> make_plain_session(ServerShard& owner, ShardSocket socket) {
  return PlainSession::open(owner, std::move(socket));
}

}  // namespace detail
}  // namespace fanout

// fanout/detail/polled_session.hpp — what every session whose descriptor waits in the shard's Poller
// shares (plain TCP and TLS): the descriptor, its registration, the close, failing from the loop, and
// the bookkeeping of a write that found the socket full.
//
// A CRTP base, so the transport's hooks are direct calls (no virtual call per frame):
//   bool open_transport(Args...)  at start, before the Poller watches the descriptor; false: it ended
//                                 the session itself (optional; the default does nothing)
//   void release_transport()      at close, before the descriptor is closed (optional)
//   void update_interest()        tells the Poller what the transport waits for now (required)
//
// Thread safety: shard thread only, like Session.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <utility>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include "fanout/detail/poller.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/session.hpp"

namespace fanout::detail {

template <class Transport>
class PolledSession : public Session, public Pollable {
 public:
  /// Takes the accepted socket out of asio's reactor (the shard's Poller watches it from now on),
  /// registers the session with its ServerShard and starts it; `args` go to open_transport.
  template <class... Args>
  static std::shared_ptr<Session> open(ServerShard& owner, ShardSocket socket, Args&&... args) {
    asio::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    const int fd = socket.release(ec);
    if (ec) return nullptr;
    auto s = std::make_shared<Transport>(owner, fd, remote);
    owner.add(s.get());
    s->start(std::forward<Args>(args)...);
    return s;
  }

  PolledSession(ServerShard& owner, int fd, asio::ip::tcp::endpoint remote)
      : Session(owner, std::move(remote)), fd_(fd) {}
  ~PolledSession() override {
    if (fd_ >= 0) ::close(fd_);
  }

 protected:
  bool open_transport() { return true; }
  void release_transport() {}

  void close_transport() final {
    if (fd_ < 0) return;
    owner_.shard.poller().remove(fd_);
    if (abort_close_) {
      const linger reset{.l_onoff = 1, .l_linger = 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    transport().release_transport();
    ::close(fd_);
    fd_ = -1;
  }

  void shutdown_send() override {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }

  /// The socket failed (reset by peer, broken pipe, a TLS alert): nothing more is written, and the
  /// session ends from the loop, since this may run inside a delivery walk that must not see the
  /// member list change.
  void fail_later() {
    if (failing_) return;
    failing_ = true;
    waiting_writable_ = true;
    queue_.clear_unsent();
    asio::post(owner_.shard.context(), [self = shared_from_this(), this] { finish(); });
  }

  /// A write found the socket full: counted, the write_timeout clock runs, and the transport waits
  /// for output (update_interest).
  void wait_writable() {
    ShardCounters::add(owner_.shard.counters.write_stalls, 1);
    waiting_writable_ = true;
    note_blocked();
    transport().update_interest();
  }

  /// When the frame at the queue's head was published, for the latency sample of the write that
  /// starts with it; 0 for replayed history, which carries its original stamp.
  std::int64_t head_published_ns() const noexcept {
    const std::int64_t at = published_ns_of(queue_.front_unstarted());
    return at >= replayed_until_ns_ ? at : 0;
  }

  /// One write went out.
  void count_write(std::int64_t first_published_ns) noexcept {
    ShardCounters::add(owner_.shard.counters.writes, 1);
    sample_write(owner_.shard.counters, first_published_ns);
  }

  int fd_;
  bool failing_ = false;  // fail_later ran: the session ends on the next loop turn

 private:
  Transport& transport() noexcept { return static_cast<Transport&>(*this); }

  template <class... Args>
  void start(Args&&... args) {
    self_ = shared_from_this();
    const int flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!transport().open_transport(std::forward<Args>(args)...)) return;
    if (owner_.shard.poller().add(fd_, this, false)) finish();
  }
};

}  // namespace fanout::detail

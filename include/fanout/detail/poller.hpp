// fanout/detail/poller.hpp — a shard's own epoll set: its loop's readiness source beside the
// io_context, for descriptors that would cost too much in asio's reactor (today: the sessions').
//
// asio's reactor keeps, per socket, a descriptor state with its mutex, a pending wait operation and
// the socket object: more than half of the per-connection budget (docs/benchmarks.md). Plain
// sessions register their descriptor here instead; the poller's epoll descriptor is the one thing
// registered with asio, and when it is readable the shard thread collects the ready sessions with
// a non-blocking epoll_wait and calls them.
// A session then costs the kernel's epoll item and 4 bytes of descriptor, nothing in user space.
//
// Thread safety: shard thread only (construction and destruction included).
#pragma once

#include <sys/epoll.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

namespace fanout::detail {

/// Something with a descriptor in a Poller; called on the shard thread with epoll's event bits.
class Pollable {
 public:
  virtual void on_poll(std::uint32_t events) = 0;

 protected:
  ~Pollable() = default;
};

class Poller {
 public:
  explicit Poller(asio::io_context& ioc);  // throws std::system_error when epoll is unavailable
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  ~Poller();

  /// Watches `fd` for input (level-triggered), and for output while `want_write`.
  std::error_code add(int fd, Pollable* p, bool want_write) noexcept;
  /// As add; without `want_read` only output, hang-up and errors are reported (a session that
  /// stops reading so its client's sends back up in TCP).
  std::error_code modify(int fd, Pollable* p, bool want_write, bool want_read = true) noexcept;
  void remove(int fd) noexcept;

 private:
  void wait();
  void dispatch();

  // The wait on the epoll descriptor is pending only while something is registered, so an
  // application running its own io_context sees run() return once every connection is gone.
  std::size_t registered_ = 0;
  bool waiting_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // a cancelled wait may run after we are gone
  static constexpr std::size_t k_max_events = 256;         // per wakeup; the loop runs other work in between
  asio::posix::stream_descriptor epoll_;
  std::array<epoll_event, k_max_events> events_{};
};

}  // namespace fanout::detail

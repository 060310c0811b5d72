#include "fanout/detail/poller.hpp"

#include <unistd.h>

#include <cerrno>

namespace fanout::detail {

namespace {
int make_epoll() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "fanout: epoll_create1");
  return fd;
}

std::uint32_t mask(bool want_write, bool want_read = true) {
  return (want_read ? EPOLLIN | EPOLLRDHUP : 0u) | (want_write ? EPOLLOUT : 0u);
}
}  // namespace

Poller::Poller(asio::io_context& ioc) : epoll_(ioc, make_epoll()) {}

Poller::~Poller() {
  asio::error_code ec;
  epoll_.close(ec);
}

std::error_code Poller::add(int fd, Pollable* p, bool want_write) noexcept {
  epoll_event ev{};
  ev.events = mask(want_write);
  ev.data.ptr = p;
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) return {errno, std::generic_category()};
  if (++registered_ == 1 && !waiting_) wait();
  return {};
}

std::error_code Poller::modify(int fd, Pollable* p, bool want_write, bool want_read) noexcept {
  epoll_event ev{};
  ev.events = mask(want_write, want_read);
  ev.data.ptr = p;
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_MOD, fd, &ev) != 0) return {errno, std::generic_category()};
  return {};
}

void Poller::remove(int fd) noexcept {
  epoll_event ev{};
  if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_DEL, fd, &ev) != 0) return;
  if (--registered_ == 0 && waiting_) {
    asio::error_code ec;
    epoll_.cancel(ec);
  }
}

void Poller::wait() {
  waiting_ = true;
  epoll_.async_wait(asio::posix::stream_descriptor::wait_read,
                    [this, alive = std::weak_ptr<int>(alive_)](const asio::error_code& ec) {
                      if (alive.expired()) return;  // the shard is gone
                      waiting_ = false;
                      if (!ec) dispatch();
                      if (registered_ > 0 && !waiting_)
                        wait();  // cancelled when the last one left, or re-armed by add()
                    });
}

void Poller::dispatch() {
  const int n = ::epoll_wait(epoll_.native_handle(), events_.data(), static_cast<int>(events_.size()), 0);
  // A session may finish while handling its own event, but it is released by a posted handler,
  // never synchronously, and one session never ends another here: every pointer stays valid.
  for (int i = 0; i < n; ++i)
    static_cast<Pollable*>(events_[static_cast<std::size_t>(i)].data.ptr)
        ->on_poll(events_[static_cast<std::size_t>(i)].events);
}

}  // namespace fanout::detail

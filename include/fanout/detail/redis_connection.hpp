// fanout/detail/redis_connection.hpp — one hiredis async connection driven by an asio io_context.
//
// hiredis does the protocol; readiness of its socket is watched with asio::posix::stream_descriptor
// and async_wait, so no thread is started and nothing blocks the loop (the host name is resolved
// with asio's async resolver before hiredis connects to the address). A lost connection is retried
// with capped exponential backoff and full jitter; commands issued while down fail at once.
//
// Thread safety: every member function on the io_context's thread (or while it is not running).
// Handlers run on that thread. Destroying the connection drops pending replies without calling
// their handlers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

struct redisAsyncContext;
struct redisReply;

namespace fanout::detail {

class RedisConnection {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(2);
    std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(100);
    std::chrono::milliseconds backoff_max = std::chrono::seconds(5);
    std::string name = "redis";  // in state reasons, for logs
  };
  /// A command's reply; nullptr when the connection was lost before it arrived.
  using ReplyHandler = std::function<void(redisReply* reply)>;
  /// Connection up (true) or lost (false, with the reason).
  using StateHandler = std::function<void(bool up, std::string_view reason)>;
  /// Every reply that arrives for a (P)SUBSCRIBE: confirmations, messages, unsubscribe confirmations.
  using PushHandler = std::function<void(redisReply* reply)>;

  RedisConnection(asio::io_context& io, Options options, StateHandler on_state, PushHandler on_push = {});
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void start();
  void stop();
  bool connected() const noexcept { return connected_.load(std::memory_order_relaxed); }  // any thread
  /// Replies not yet received.
  std::size_t pending() const noexcept { return pending_; }

  /// Sends a command; false (handler not called) when not connected.
  bool command(std::span<const std::string_view> args, ReplyHandler handler);
  /// SUBSCRIBE / UNSUBSCRIBE / PSUBSCRIBE ...: replies go to the PushHandler.
  bool push_command(std::span<const std::string_view> args);
  /// Drops the connection now (pending handlers get nullptr) and reconnects after the backoff.
  void reset(std::string_view reason);

 private:
  struct ReplyBox;
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_push_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void ev_add_read(void* p);
  static void ev_del_read(void* p);
  static void ev_add_write(void* p);
  static void ev_del_write(void* p);
  static void ev_cleanup(void* p);

  void connect();
  void connect_to(const asio::ip::address& address);
  void wait_read();
  void wait_write();
  void lost(std::string_view reason);
  void schedule_reconnect();
  bool send(std::span<const std::string_view> args, void (*fn)(redisAsyncContext*, void*, void*), void* privdata);

  asio::io_context& io_;
  Options options_;
  StateHandler on_state_;
  PushHandler on_push_;
  asio::ip::tcp::resolver resolver_;
  asio::posix::stream_descriptor socket_;
  asio::steady_timer timer_;  // connect timeout, then reconnect backoff
  redisAsyncContext* ac_ = nullptr;
  std::uint64_t generation_ = 0;  // bumped per connection so stale waits do nothing
  bool running_ = false, closing_ = false;
  std::atomic<bool> connected_{false};
  bool want_read_ = false, want_write_ = false, reading_ = false, writing_ = false;
  std::string last_error_;
  std::chrono::milliseconds backoff_{0};
  std::size_t pending_ = 0;
  std::minstd_rand rng_{std::random_device{}()};
  std::shared_ptr<bool> life_ = std::make_shared<bool>(true);  // false once destroyed
};

}  // namespace fanout::detail

// fanout/redis_lease.hpp — leadership of one upstream stream among several ingest candidates.
//
// A candidate wins with `SET fanout:lease:{stream} token NX PX ttl` and takes a new fencing number
// with INCR fanout:fence:{stream} (both in one script, so the number is the winner's); it renews with
// a compare-and-extend script (PEXPIRE only while the key still holds its token). It counts itself
// leader only until `ttl - margin` after its last renewal was sent, so it steps down before the key
// can expire in Redis, even when Redis stops answering. Every message it publishes carries the
// fencing number, and the bus refuses (and edges drop) messages with an older one, so a paused
// leader that wakes up cannot deliver anything after its successor took over.
//
//   fanout::RedisLease lease(io, {.stream = "okx"}, [&](bool leader, std::uint64_t fence, auto why) {
//     leader ? upstream.start() : upstream.stop();
//   });
//   lease.start();
//
// Thread safety: fence(), leader(), deposed() from any thread; the rest on the io_context's thread
// (or before it runs). The handler runs on the io_context's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <asio/io_context.hpp>

#include "fanout/export.hpp"

namespace fanout {

class FANOUT_API RedisLease {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string prefix = "fanout";
    std::string stream = "upstream";                          // what is led: one lease per upstream stream
    std::chrono::milliseconds ttl = std::chrono::seconds(3);  // takeover after a leader dies: about this
    std::chrono::milliseconds renew_interval{0};              // 0: ttl / 3
    std::chrono::milliseconds retry_interval{0};              // a standby's attempts; 0: ttl / 6
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(1);
    std::chrono::milliseconds backoff_max = std::chrono::seconds(1);
  };
  /// Leadership won (with its fencing number) or lost (fence 0), and why, for logs.
  using Handler = std::function<void(bool leader, std::uint64_t fence, std::string_view why)>;

  /// Throws std::invalid_argument for a ttl under 100 ms or intervals not below the ttl.
  RedisLease(asio::io_context& io, Options options, Handler handler);
  ~RedisLease();
  RedisLease(const RedisLease&) = delete;
  RedisLease& operator=(const RedisLease&) = delete;

  void start();
  /// Stops competing; a leader steps down (handler called) and deletes the key if it still holds it,
  /// so a standby can take over at once. `done` runs when that answer came (or could not come).
  void stop(std::function<void()> done = {});
  /// The broker refused a publish with our fencing number: step down now.
  void deposed();

  bool leader() const noexcept { return fence_.load(std::memory_order_acquire) != 0; }
  /// The fencing number while leader, 0 otherwise.
  std::uint64_t fence() const noexcept { return fence_.load(std::memory_order_acquire); }
  const std::string& token() const noexcept { return token_; }

 private:
  struct Impl;
  std::string token_;
  std::atomic<std::uint64_t> fence_{0};
  std::shared_ptr<Impl> impl_;
};

}  // namespace fanout

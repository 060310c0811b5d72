// fanout/detail/token_bucket.hpp — a rate limit in 8 bytes: per connection (control ops, pings) and
// per client IP (handshakes), so it must stay small and cost no clock read of its own.
//
// The bucket starts full (`burst` tokens) and refills at `rate` tokens per second; take() spends
// `cost` tokens or refuses. Time is passed in as milliseconds of a monotonic clock (now_ms()), read
// once by the caller; a rate of 0 means no limit.
//
// Thread safety: none; the owner serialises calls (a session's shard, or an IpLimiter stripe lock).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace fanout::detail {

/// Milliseconds of the steady clock, truncated to 32 bits: buckets compare differences only, and a
/// bucket left alone for 49 days is simply full.
inline std::uint32_t now_ms() noexcept {
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

class TokenBucket {
 public:
  /// Spends `cost` tokens when the bucket holds them; false (nothing spent) otherwise.
  bool take(double cost, double rate, double burst, std::uint32_t now) noexcept {
    if (rate <= 0) return true;
    refill(rate, burst, now);
    if (tokens_ < cost) return false;
    tokens_ -= static_cast<float>(cost);
    return true;
  }
  /// True when the bucket is back to `burst` (nothing to remember about its owner any more).
  bool full(double rate, double burst, std::uint32_t now) noexcept {
    if (rate <= 0) return true;
    refill(rate, burst, now);
    return tokens_ >= burst;
  }

 private:
  void refill(double rate, double burst, std::uint32_t now) noexcept {
    if (tokens_ < 0) {  // first use
      tokens_ = static_cast<float>(burst);
    } else {
      const std::uint32_t elapsed = now - last_;  // unsigned: correct across the 32-bit wrap
      tokens_ = static_cast<float>(std::min<double>(burst, tokens_ + elapsed * rate / 1000.0));
    }
    last_ = now;
  }

  float tokens_ = -1;  // below 0: never used, full
  std::uint32_t last_ = 0;
};

}  // namespace fanout::detail

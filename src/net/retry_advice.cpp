#include "fanout/detail/retry_advice.hpp"

#include <algorithm>
#include <random>

#include <fmt/format.h>

namespace fanout::detail {

std::chrono::milliseconds jittered(std::chrono::milliseconds whole, double jitter) noexcept {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const std::int64_t hi = std::max<std::int64_t>(0, whole.count());
  const double share = std::clamp(jitter, 0.0, 1.0);
  const auto lo = static_cast<std::int64_t>(static_cast<double>(hi) * (1.0 - share));
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(std::min(lo, hi), hi)(rng));
}

std::uint32_t retry_after_seconds(std::chrono::milliseconds whole, double jitter) noexcept {
  const auto ms = jittered(whole, jitter).count();
  return static_cast<std::uint32_t>(std::max<std::int64_t>(1, (ms + 999) / 1000));
}

std::string retry_close_reason(std::string_view reason, std::chrono::milliseconds after) {
  return fmt::format(R"({{"reason":"{}","retry_after_ms":{}}})", reason.substr(0, 64), after.count());
}

}  // namespace fanout::detail

#include "fanout/detail/error_reporter.hpp"

#include <fmt/format.h>

#include <cstdio>

namespace fanout::detail {

ErrorReporter::ErrorReporter(Handler handler, std::chrono::milliseconds interval)
    : handler_(std::move(handler)), interval_(interval) {}

void ErrorReporter::report(std::string_view message) noexcept {
  try {
    std::uint64_t suppressed = 0;
    {
      std::lock_guard lock(mutex_);
      const auto now = std::chrono::steady_clock::now();
      if (reported_ && now - last_ < interval_) {
        ++suppressed_;
        return;
      }
      reported_ = true;
      last_ = now;
      suppressed = suppressed_;
      suppressed_ = 0;
    }
    std::string line =
        suppressed ? fmt::format("{} ({} similar errors not shown)", message, suppressed) : std::string(message);
    if (handler_)
      handler_(line);
    else
      fmt::print(stderr, "fanout: {}\n", line);
  } catch (...) {
  }
}

}  // namespace fanout::detail

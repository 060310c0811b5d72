// fanout/detail/error_reporter.hpp — reports errors from user code and writers without flooding the log.
//
// A handler that throws on every message would otherwise print a line per message: the first error
// is reported at once, later ones at most once per interval with the number left unreported.
// Thread safety: report() from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace fanout::detail {

class ErrorReporter {
 public:
  using Handler = std::function<void(std::string_view message)>;

  /// An empty handler prints "fanout: <message>" to stderr.
  explicit ErrorReporter(Handler handler, std::chrono::milliseconds interval = std::chrono::seconds(1));

  /// Never throws: a handler that throws is ignored.
  void report(std::string_view message) noexcept;

 private:
  Handler handler_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t suppressed_ = 0;
  bool reported_ = false;
};

}  // namespace fanout::detail

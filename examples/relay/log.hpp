// The relay's log line and the error its builders throw when it cannot start.
#pragma once

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <stdexcept>
#include <string>
#include <utility>

namespace relay {

/// One line on stderr, prefixed with the local time to the millisecond.
template <class... Args>
void log(fmt::format_string<Args...> f, Args&&... args) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  fmt::print(stderr, "{:%Y-%m-%d %H:%M:%S}.{:03} {}\n", fmt::localtime(std::chrono::system_clock::to_time_t(now)), ms,
             fmt::format(f, std::forward<Args>(args)...));
}

/// Thrown by a builder that cannot set its part up: main prints "fanout-relay: <what>" and exits
/// with `exit_code` (2: bad configuration, 1: the environment refused, e.g. a port in use).
class StartupError : public std::runtime_error {
 public:
  StartupError(int exit_code, const std::string& what) : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

/// Runs `build`, turning what it throws into a StartupError "<context>: <what>".
template <class F>
auto building(int exit_code, std::string_view context, F&& build) -> decltype(build()) {
  try {
    return build();
  } catch (const StartupError&) {
    throw;
  } catch (const std::exception& e) {
    throw StartupError(exit_code, fmt::format("{}: {}", context, e.what()));
  }
}

}  // namespace relay

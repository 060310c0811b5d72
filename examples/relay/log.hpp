// The relay's log: one line per event on stderr, with a level, as text or as JSON, timestamps in UTC
// (RFC 3339 with Z), and the error its builders throw when it cannot start.
//
//   2026-12-03T04:40:01.123Z info upstream okx live: wss://...             (--log-format text)
//   {"ts":"2026-12-03T04:40:01.123Z","level":"info","msg":"upstream okx live: wss://..."}  (json)
//
// A small logger of our own rather than spdlog: the JSON form must escape every message (spdlog's
// patterns do not), the levels are the four an operator sets, and the library already reports through
// string callbacks (RedisBus::set_log_handler, Processor/Sink on_error) that land here.
//
// Thread safety: every function from any thread; a line is written with one call, whole.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace relay {

enum class LogLevel { error, warn, info, debug };
enum class LogFormat { text, json };

const char* to_string(LogLevel l) noexcept;
std::optional<LogLevel> log_level_by_name(std::string_view name) noexcept;
std::optional<LogFormat> log_format_by_name(std::string_view name) noexcept;

/// The level below which lines are dropped, and the format; SIGHUP may change the level.
void set_log_level(LogLevel level) noexcept;
void set_log_format(LogFormat format) noexcept;
LogLevel log_level() noexcept;
bool log_enabled(LogLevel level) noexcept;

/// Writes one line (already formatted) at `level`, when enabled.
void write_log(LogLevel level, std::string_view msg);

/// Now, as "2026-12-03T04:40:01.123Z".
std::string utc_timestamp();

template <class... Args>
void log_at(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(level)) write_log(level, fmt::format(f, std::forward<Args>(args)...));
}
/// Info: state changes and stats (the default level shows them).
template <class... Args>
void log(fmt::format_string<Args...> f, Args&&... args) {
  log_at(LogLevel::info, f, std::forward<Args>(args)...);
}
template <class... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... args) {
  log_at(LogLevel::warn, f, std::forward<Args>(args)...);
}
template <class... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) {
  log_at(LogLevel::error, f, std::forward<Args>(args)...);
}
template <class... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  log_at(LogLevel::debug, f, std::forward<Args>(args)...);
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

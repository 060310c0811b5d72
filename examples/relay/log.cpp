#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace relay {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};
std::atomic<LogFormat> g_format{LogFormat::text};

// A JSON string's content: quotes, backslashes and control characters escaped; other bytes as
// they are (messages are UTF-8 or ASCII; redacted upstream text included).
void append_json_escaped(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F)
          out += fmt::format("\\u{:04x}", c);
        else
          out += ch;
    }
  }
}

}  // namespace

const char* to_string(LogLevel l) noexcept {
  switch (l) {
    case LogLevel::error: return "error";
    case LogLevel::warn: return "warn";
    case LogLevel::debug: return "debug";
    case LogLevel::info: break;
  }
  return "info";
}

std::optional<LogLevel> log_level_by_name(std::string_view name) noexcept {
  for (auto l : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug})
    if (name == to_string(l)) return l;
  if (name == "warning") return LogLevel::warn;
  return std::nullopt;
}

std::optional<LogFormat> log_format_by_name(std::string_view name) noexcept {
  if (name == "text") return LogFormat::text;
  if (name == "json") return LogFormat::json;
  return std::nullopt;
}

void set_log_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }
void set_log_format(LogFormat format) noexcept { g_format.store(format, std::memory_order_relaxed); }
LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }
bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= static_cast<int>(g_level.load(std::memory_order_relaxed));
}

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

void write_log(LogLevel level, std::string_view msg) {
  if (!log_enabled(level)) return;
  std::string line;
  line.reserve(msg.size() + 64);
  if (g_format.load(std::memory_order_relaxed) == LogFormat::json) {
    line += "{\"ts\":\"";
    line += utc_timestamp();
    line += "\",\"level\":\"";
    line += to_string(level);
    line += "\",\"msg\":\"";
    append_json_escaped(line, msg);
    line += "\"}\n";
  } else {
    line += utc_timestamp();
    line += ' ';
    line += to_string(level);
    line += ' ';
    // One event, one line: a message with a newline (an upstream's reason) would split it.
    for (const char ch : msg) line += (ch == '\n' || ch == '\r') ? ' ' : ch;
    line += '\n';
  }
  std::fwrite(line.data(), 1, line.size(), stderr);  // stderr is unbuffered: one write per line
}

}  // namespace relay

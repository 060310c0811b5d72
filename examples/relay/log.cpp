#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace relay {
namespace {

std::atomic<LogLevel> g_level{LogLevel::info};
std::atomic<LogFormat> g_format{LogFormat::text};

// Length of the valid UTF-8 sequence at the start of `s`, or 0 when it is not one.
std::size_t utf8_length(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;  // overlong, surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;  // overlong, past U+10FFFF
    return 4;
  }
  return 0;
}

// A JSON string's content: quotes, backslashes and control characters escaped, bytes that are not
// UTF-8 (an upstream's reason may carry any) as U+FFFD, so every line parses.
void append_json_escaped(std::string& out, std::string_view s) {
  while (!s.empty()) {
    const std::size_t n = utf8_length(s);
    const char ch = s[0];
    if (n == 0) {
      out += "\\ufffd";
      s.remove_prefix(1);
      continue;
    }
    if (n > 1) {
      out.append(s.substr(0, n));
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(ch));
    } else {
      out += ch;
    }
    s.remove_prefix(n);
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

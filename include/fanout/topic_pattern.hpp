// fanout/topic_pattern.hpp — wildcard topic patterns, as clients subscribe to them ("trades:*").
//
// A topic name is made of segments separated by ':' or '.' (both, as exchanges use both:
// `tickers:BTC-USDT`, `trades.BTC.USDT`). In a pattern, `*` stands for whole segments only:
//   - a final `*` matches the rest of the name, one or more characters, separators included:
//     `trades:*` matches `trades:BTC-USDT` and `trades:BTC:USDT`, not `trades:` or `trades`;
//   - any other `*` matches exactly one segment (one or more characters, no separator):
//     `trades:*:USDT` matches `trades:BTC:USDT`, not `trades:BTC:ETH:USDT`;
//   - `*` alone matches every topic.
// A separator in a pattern matches only itself: `trades:*` does not match `trades.BTC`. A `*` inside a
// segment (`trades:BTC*`) is not a pattern at all: is_pattern() says so, valid() refuses it.
//
//   if (fanout::TopicPattern::matches("trades:*:USDT", "trades:BTC:USDT")) ...
//
// Thread safety: pure functions.
#pragma once

#include <string_view>

#include "fanout/export.hpp"

namespace fanout {

struct FANOUT_API TopicPattern {
  static constexpr bool is_separator(char c) noexcept { return c == ':' || c == '.'; }
  /// True when `name` contains a `*`: a client's subscribe treats it as a pattern, never as a topic.
  static bool is_pattern(std::string_view name) noexcept { return name.find('*') != std::string_view::npos; }
  /// A well-formed pattern: every `*` is a whole segment. (The characters are checked as for topic
  /// names, by Hub::valid_topic.)
  static bool valid(std::string_view pattern) noexcept;
  /// True when the valid `pattern` matches the topic `name`.
  static bool matches(std::string_view pattern, std::string_view name) noexcept;
  /// What every name the pattern matches begins with: the text before its first `*`.
  static std::string_view literal_head(std::string_view pattern) noexcept {
    return pattern.substr(0, pattern.find('*'));
  }
};

}  // namespace fanout

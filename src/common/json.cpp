#include "fanout/detail/json.hpp"

#include <iterator>

#include <fmt/format.h>

namespace fanout::detail {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7F)
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        else
          out += static_cast<char>(c);
    }
  }
  out += '"';
}

std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_json_string(out, s);
  return out;
}

void append_json_value(std::string& out, std::string_view payload) {
  const auto first = payload.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (payload[first] == '{' || payload[first] == '['))
    out += payload;
  else
    append_json_string(out, payload);
}

}  // namespace fanout::detail

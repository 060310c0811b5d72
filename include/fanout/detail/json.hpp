// fanout/detail/json.hpp — writing JSON text: string literals and embedded payloads. Every layer may
// include it (envelopes, journal lines, control replies, HTTP routes); reading JSON is simdjson's job.
#pragma once

#include <string>
#include <string_view>

#include "fanout/export.hpp"

namespace fanout::detail {

/// `s` as a JSON string literal, quotes included: `"` and `\` escaped, \n \r \t as such, other control
/// characters and DEL as \u00XX; every other byte (UTF-8 included) passes through unchanged.
FANOUT_API std::string json_string(std::string_view s);
/// The same, appended to `out`.
FANOUT_API void append_json_string(std::string& out, std::string_view s);

/// Appends `payload` as a JSON value: as is when it looks like JSON (an object or array), else as a string.
FANOUT_API void append_json_value(std::string& out, std::string_view payload);

}  // namespace fanout::detail

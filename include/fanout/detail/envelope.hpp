// fanout/detail/envelope.hpp — the envelope form of a message: {"topic":"t","seq":N,"key":"k","data":<payload>}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fanout/frame.hpp"

namespace fanout::detail {

/// Builds the envelope frame once per message. A payload that looks like JSON (an object or array)
/// is embedded as is; any other text becomes a JSON string. Binary payloads are not wrapped: the
/// verbatim frame is returned for them (a JSON envelope cannot carry raw bytes).
FrameRef make_envelope(std::string_view topic, std::uint64_t seq, std::string_view key, const FrameRef& verbatim);

}  // namespace fanout::detail

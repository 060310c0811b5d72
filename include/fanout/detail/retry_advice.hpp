// fanout/detail/retry_advice.hpp — when a client turned away should come back (docs/protocol.md,
// "Reconnect advice"): a 503's Retry-After, and the retry_after_ms of a 1012 (drain) or 1013
// (overload) close reason. Always jittered, so clients turned away together do not return together.
//
// Thread safety: pure functions; the random source is per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace fanout::detail {

/// Uniform in [whole x (1 - jitter), whole]; jitter is clamped to [0, 1].
std::chrono::milliseconds jittered(std::chrono::milliseconds whole, double jitter) noexcept;

/// Retry-After seconds: jittered(whole, jitter) rounded up, at least 1.
std::uint32_t retry_after_seconds(std::chrono::milliseconds whole, double jitter) noexcept;

/// {"reason":"<reason>","retry_after_ms":N}: a close reason a client can parse. `reason` must be a
/// plain word (no escaping is done), cut to 64 bytes, so the result always fits the 123 bytes a
/// close reason may have.
std::string retry_close_reason(std::string_view reason, std::chrono::milliseconds after);

}  // namespace fanout::detail

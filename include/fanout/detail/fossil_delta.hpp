// fanout/detail/fossil_delta.hpp — the Fossil delta format: encode a target as copies from a source
// plus literal inserts, and apply such a delta with hard bounds.
//
// The format (fossil-scm.org, www/delta_format.wiki) is what Centrifugo sends and what the npm
// `fossil-delta` package and centrifuge-js decode, so existing JavaScript clients read our deltas.
// No Debian package provides it, and it is small: written here from the format's specification
// (numbers in a 64-letter alphabet, `N\n` header, `N@OFF,` copies, `N:bytes` inserts, `SUM;`
// trailer), not copied from any implementation.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fanout/export.hpp"

namespace fanout::detail::fossil {

/// Appends to `out` a delta that turns `source` into `target`. Literal inserts start and end on
/// UTF-8 character boundaries of `target`, so the delta of valid UTF-8 text is valid UTF-8 (it can
/// travel as a JSON string, as Centrifugo's JSON protocol sends it). Cost: O(source + target).
FANOUT_API void encode(std::string_view source, std::string_view target, std::string& out);

/// The target's checksum as the trailer carries it: the sum of its 32-bit big-endian words, the
/// last one padded with zero bytes.
FANOUT_API std::uint32_t checksum(std::string_view data) noexcept;

/// Applies `delta` to `source`, replacing `out` with the target. Returns nullptr on success, or why
/// the delta was refused: malformed, a copy outside `source`, a size that does not match, a bad
/// checksum, or a target larger than `max_target` bytes (checked before anything is allocated).
FANOUT_API const char* decode(std::string_view source, std::string_view delta, std::string& out,
                              std::size_t max_target);

}  // namespace fanout::detail::fossil

// fanout/detail/delta_forms.hpp — what a subscription with `"delta":"fossil"` receives, built once
// per publish for all of them (docs/protocol.md, "Deltas").
//
// Its frames are envelopes whose `data` is the payload as a JSON string (a client must keep the
// exact bytes to apply the next delta, and JSON.parse would lose them), as Centrifugo's JSON protocol
// sends them:
//   full:  {"topic":"t","seq":8,"key":"k","data":"{\"px\":1}"}
//   delta: {"topic":"t","seq":8,"key":"k","delta":true,"data":"<Fossil delta against the key's previous message>"}
// The full frame owns its delta (Frame::delta). Which one a client gets is decided by its session when
// the frame goes to the socket: the delta only when the base is the last message of that key this
// client was written (drops, conflation, a late join or a replay all mean the full message).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fanout/frame.hpp"

namespace fanout::detail {

struct DeltaForms {
  /// The message's delta-form frame; with `base` (the previous message of the same topic and key, or
  /// nullptr) it also carries the delta against it, when the payload is at most `max_payload` bytes,
  /// both are valid UTF-8 text, and the delta is smaller than the payload. Binary payloads have no
  /// delta form: their verbatim frame is returned.
  static FrameRef make(std::string_view topic, std::uint64_t seq, std::string_view key, const FrameRef& verbatim,
                       const Frame* base, std::size_t max_payload);
};

/// True when `s` is valid UTF-8 (what a JSON string can carry byte for byte).
bool valid_utf8(std::string_view s) noexcept;

}  // namespace fanout::detail

// fanout/bus_message.hpp — one routed message as it travels between nodes over a Bus.
//
// The wire form is binary-safe and small enough to be built by a Redis Lua script (which is where
// the seq is assigned):
//
//   "FO1 " seq " " fence " " op " " topic_len " " key_len "\n" topic key payload
//
// with seq, fence, topic_len and key_len in decimal and op 't' (text) or 'b' (binary).
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fanout/export.hpp"
#include "fanout/frame.hpp"

namespace fanout {

struct FANOUT_API BusMessage {
  std::string_view topic{};
  std::string_view key{};      // may be empty
  std::string_view payload{};  // forwarded to clients verbatim
  std::uint64_t seq = 0;       // per topic, assigned once by the bus so every edge agrees
  std::uint64_t fence = 0;     // the publishing leader's fencing number; 0: not fenced
  Opcode op = Opcode::text;
};

/// The wire form of `m` (used by tests and by buses that do not assign seq on the broker).
FANOUT_API std::string encode_bus_message(const BusMessage& m);

/// Parses `wire` into `out` (views into `wire`). False, with `out` unspecified, for anything that is
/// not exactly one well-formed message.
FANOUT_API bool decode_bus_message(std::string_view wire, BusMessage& out) noexcept;

}  // namespace fanout

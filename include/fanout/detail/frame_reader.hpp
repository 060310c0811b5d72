// fanout/detail/frame_reader.hpp — client frames in, messages out: wslay's server mode (masking,
// fragmentation, control-frame rules, close codes) fed from memory, with no socket.
//
//   FrameReader reader(64 * 1024);
//   if (!reader.feed(bytes)) ...;        // framing error: answer 1002
//   send(reader.replies());              // wslay's pongs and close replies
//   for (auto& [op, payload] : reader.take_messages()) ...;
//
// A reader carries wslay's input buffer; its owner frees it whenever idle() (no frame or fragmented
// message half-received), so an idle connection holds no parser state.
// Thread safety: one reader per connection, used on that connection's shard only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fanout/frame.hpp"

struct wslay_event_context;

namespace fanout::detail {

class FrameReader {
 public:
  using Message = std::pair<Opcode, std::string>;  // text, binary or close (ping is answered, pong noted)

  /// Larger messages are refused with a 1009 close. `deflate`: permessage-deflate was negotiated, so
  /// RSV1 marks a compressed message, inflated here (inflater.hpp) within the same bound (1009
  /// past it, 1007 when corrupt). Throws std::bad_alloc.
  explicit FrameReader(std::size_t max_message_bytes, bool deflate = false);
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  /// Reads `data`. False on a framing error wslay reports without a status code (fragmented or
  /// oversized control frame, bad opcode sequence, one-byte close payload): the caller answers 1002.
  [[nodiscard]] bool feed(std::span<const std::byte> data);
  /// What wslay answered during the feeds so far (pongs, close frames); the caller sends and clears it.
  std::string& replies() noexcept { return out_; }
  /// Pings received since the last call (wslay answers them; the session rate-limits them).
  std::size_t take_pings() noexcept { return std::exchange(pings_, 0); }
  /// Messages completed so far, in arrival order.
  std::vector<Message> take_messages() noexcept { return std::exchange(messages_, {}); }
  /// The client's close frame arrived.
  bool close_received() const noexcept;
  /// Reading is over: wslay sent a close (its own failure, or the echo of the client's).
  bool finished() const noexcept;
  /// No frame or fragmented message is half-received.
  bool idle() const noexcept;

 private:
  /// Follows frame boundaries in the byte stream, beside wslay, for idle().
  struct Boundary {
    std::uint8_t header[14];
    std::uint8_t header_len = 0;
    std::uint64_t payload_left = 0;
    bool message_open = false;  // a fragmented data message awaits its continuation frames
    void feed(const std::byte* p, std::size_t n) noexcept;
    bool idle() const noexcept { return header_len == 0 && payload_left == 0 && !message_open; }
  };

  wslay_event_context* ctx_ = nullptr;
  const std::byte* in_ = nullptr;
  std::size_t in_left_ = 0;
  std::string out_;
  // Completed during one wslay_event_recv and handled after it, so replies keep arrival order with
  // wslay's own answers (a ping's pong goes out before the reply to a later text message).
  std::vector<Message> messages_;
  std::size_t pings_ = 0;
  bool protocol_error_ = false;  // something wslay lets through that RFC 6455 forbids
  std::size_t max_message_bytes_;
  Boundary boundary_;
};

}  // namespace fanout::detail

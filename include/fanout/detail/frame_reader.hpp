// fanout/detail/frame_reader.hpp — the peer's frames in, messages out: wslay (masking, fragmentation,
// control-frame rules, close codes) fed from memory, with no socket. The one wslay adapter: server
// sessions read client frames with it (Role::server), the upstream client reads a server's frames and
// sends its own masked frames with it (Role::client).
//
//   FrameReader reader(64 * 1024);
//   if (!reader.feed(bytes)) ...;        // framing error: answer 1002
//   send(reader.replies());              // wslay's pongs and close replies (and send()'s frames)
//   for (auto& m : reader.take_messages()) ... m.op, m.payload ...;
//
// A server session frees its reader (and wslay's input buffer) whenever idle() (no frame or
// fragmented message half-received), so an idle connection holds no parser state.
// Thread safety: one reader per connection, used on that connection's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fanout/frame.hpp"

struct wslay_event_context;

namespace fanout::detail {

class FrameReader {
 public:
  /// A completed message: text, binary or close (pings are answered, pongs only noted).
  struct Message {
    Opcode op;
    std::string payload;
    bool compressed = false;  // RSV1 was set (permessage-deflate, after allow_rsv1)
  };
  /// server: the peer is a client, its frames must be masked and ours are not. client: the reverse
  /// (a masked frame from a server is a protocol error, closed with 1002).
  enum class Role : std::uint8_t { server, client };

  /// Larger messages are refused with a 1009 close. `deflate` (server role): permessage-deflate was
  /// negotiated with no context takeover, so RSV1 marks a compressed message, inflated here
  /// (inflater.hpp) within the same bound (1009 past it, 1007 when corrupt). Throws std::bad_alloc.
  explicit FrameReader(std::size_t max_message_bytes, Role role = Role::server, bool deflate = false);
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  /// Reads `data`. False on a framing error wslay reports without a status code (fragmented or
  /// oversized control frame, bad opcode sequence, one-byte close payload): the caller answers 1002.
  [[nodiscard]] bool feed(std::span<const std::byte> data);
  /// What wslay answered during the feeds so far (pongs, close frames), and the frames of send() and
  /// send_close(); the caller sends and clears it.
  std::string& replies() noexcept { return out_; }
  /// Frames a message for the peer (text, binary, ping or pong; masked in client mode) into
  /// replies(). False once a close frame was sent, or when the control payload is over 125 bytes.
  bool send(Opcode op, std::string_view payload);
  /// Frames a close (a code of 0 sends none) into replies(); false when one was sent already.
  bool send_close(std::uint16_t code, std::string_view reason = {});
  /// permessage-deflate was agreed: RSV1 may be set on data messages (Message::compressed).
  void allow_rsv1() noexcept;
  /// The code of the peer's close frame (1005 when it had none; 0 before one arrived).
  std::uint16_t close_code_received() const noexcept;
  /// The code of the close frame wslay or send_close sent (e.g. 1009 for an oversize message; 0: none).
  std::uint16_t close_code_sent() const noexcept;
  /// Pings received since the last call (wslay answers them; the session rate-limits them).
  std::size_t take_pings() noexcept { return std::exchange(pings_, 0); }
  /// Pongs received since the last call (the upstream client counts them as signs of life).
  std::size_t take_pongs() noexcept { return std::exchange(pongs_, 0); }
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
  std::size_t pongs_ = 0;
  bool protocol_error_ = false;  // something wslay lets through that RFC 6455 forbids
  std::size_t max_message_bytes_;
  bool inflate_ = false;  // RSV1 messages are inflated here (the constructor's `deflate`)
  Boundary boundary_;
};

}  // namespace fanout::detail

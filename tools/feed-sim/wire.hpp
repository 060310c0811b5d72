// What the simulator writes: WebSocket frames (server to client: never masked), compressed with
// permessage-deflate or gzip when a connection asked for it; each encoding of a data message is made
// once and shared by every subscriber.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace fanout::sim::detail {

// One encoded frame (or HTTP response); shared by every connection that sends it.
using Bytes = std::shared_ptr<const std::string>;

constexpr std::uint8_t k_text = 0x1;
constexpr std::uint8_t k_binary = 0x2;

Bytes make_frame(std::uint8_t opcode, std::string_view payload, bool rsv1 = false);

// Inflates one permessage-deflate message (client_no_context_takeover: a fresh stream each time);
// false when it is corrupt or inflates beyond `limit` bytes.
bool inflate_message(std::string_view in, std::size_t limit, std::string& out);

class Deflater;

// zlib deflaters, one per window size, reset per message (no context carried between messages).
class Codecs {
 public:
  Codecs();
  ~Codecs();
  Codecs(const Codecs&) = delete;
  Codecs& operator=(const Codecs&) = delete;

  std::string deflate(std::string_view in, int window_bits);  // permessage-deflate payload
  std::string gzip(std::string_view in);                      // a complete gzip member

 private:
  std::array<std::unique_ptr<Deflater>, 16> raw_;
  std::unique_ptr<Deflater> gzip_;
};

// One data message; each encoding computed at most once, on first use, then shared.
class Message {
 public:
  Message(std::string payload, Codecs& codecs) : payload_(std::move(payload)), codecs_(codecs) {}

  const Bytes& text();
  const Bytes& deflated(int window_bits);
  const Bytes& gzip();

 private:
  std::string payload_;
  Codecs& codecs_;
  Bytes text_, gzip_;
  std::array<Bytes, 16> deflated_;
};

}  // namespace fanout::sim::detail

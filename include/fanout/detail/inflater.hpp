// fanout/detail/inflater.hpp — permessage-deflate (RFC 7692) decompression of one client message, with
// a hard cap on what it may grow to: a compression bomb stops at `limit` bytes, not at memory's end.
//
//   detail::Inflater in;
//   switch (in.inflate(compressed, max_message_bytes, text)) { case Inflater::Result::too_big: 1009 ... }
//
// No context is kept between messages: the server answers client_no_context_takeover (docs/protocol.md),
// so the stream (~7 KiB state + 32 KiB window) is per thread (thread_inflater()), never per client.
// Thread safety: one Inflater per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace fanout::detail {

class Inflater {
 public:
  enum class Result { ok, too_big, corrupt };

  Inflater() noexcept;
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  /// Replaces `out` with the inflation of `in` (the message's payload, without the 00 00 ff ff tail
  /// the sender removed). Inflation stops as soon as the output passes `limit` bytes (too_big);
  /// corrupt: not valid raw deflate, or a stream that ends before the message does. The stream is
  /// reset afterwards either way.
  Result inflate(std::string_view in, std::size_t limit, std::string& out);

 private:
  struct Stream;
  std::unique_ptr<Stream> z_;
};

/// The calling thread's Inflater (each shard reads its own sessions' messages).
Inflater& thread_inflater();

}  // namespace fanout::detail

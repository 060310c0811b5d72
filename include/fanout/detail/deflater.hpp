// fanout/detail/deflater.hpp — permessage-deflate (RFC 7692) compression of one whole message, with no
// context carried to the next: what lets one compressed frame serve every client that negotiated
// server_no_context_takeover (frame.hpp, Frame::deflated).
//
//   detail::Deflater d;
//   std::string out;
//   if (d.compress(payload, out) && out.size() < payload.size()) ...;  // RSV1 frame around `out`
//
// The stream (~256 KiB of zlib state at window 15, memLevel 8) is allocated on first use and reused:
// one per thread (thread_deflater()), never one per client.
// Thread safety: one Deflater per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace fanout::detail {

class Deflater {
 public:
  /// zlib's level: 1 (fast) to 9 (small); 6 is zlib's default.
  explicit Deflater(int level = 6) noexcept;
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  /// Replaces `out` with the raw-deflate encoding of `in` minus the trailing 00 00 ff ff (RFC 7692
  /// 7.2.1), the stream reset afterwards. False only when zlib fails (allocation).
  bool compress(std::string_view in, std::string& out);

 private:
  struct Stream;
  std::unique_ptr<Stream> z_;
  int level_;
};

/// The calling thread's Deflater (shards, publishers): compress-once costs one stream per thread.
Deflater& thread_deflater();

}  // namespace fanout::detail

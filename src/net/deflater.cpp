#include "fanout/detail/deflater.hpp"

#include "fanout/detail/deflate_stats.hpp"

#include <zlib.h>

namespace fanout::detail {

struct Deflater::Stream {
  z_stream z{};
  ~Stream() { deflateEnd(&z); }
};

Deflater::Deflater(int level) noexcept : level_(level) {}
Deflater::~Deflater() = default;

bool Deflater::compress(std::string_view in, std::string& out) {
  if (!z_) {
    auto s = std::make_unique<Stream>();
    // Raw deflate (negative window bits), full window: every client inflates with window 15 or less
    // because the server never agrees to a smaller server_max_window_bits (permessage_deflate.cpp).
    if (deflateInit2(&s->z, level_, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    z_ = std::move(s);
  }
  z_stream& z = z_->z;
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 8);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  // Z_SYNC_FLUSH ends on an empty stored block (00 00 ff ff) that RFC 7692 7.2.1 says to remove.
  const int rc = ::deflate(&z, Z_SYNC_FLUSH);
  const std::size_t n = out.size() - z.avail_out;
  deflateReset(&z);  // no context takeover: the next message starts from an empty window
  if (rc != Z_OK || z.avail_in != 0 || n < 4) return false;
  out.resize(n - 4);
  return true;
}

DeflateStats& deflate_stats() noexcept {
  static DeflateStats stats;
  return stats;
}

Deflater& thread_deflater() {
  thread_local Deflater d;
  return d;
}

}  // namespace fanout::detail

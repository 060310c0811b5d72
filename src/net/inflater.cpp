#include "fanout/detail/inflater.hpp"

#include <zlib.h>

#include <algorithm>

namespace fanout::detail {

struct Inflater::Stream {
  z_stream z{};
  ~Stream() { inflateEnd(&z); }
};

Inflater::Inflater() noexcept = default;
Inflater::~Inflater() = default;

Inflater::Result Inflater::inflate(std::string_view in, std::size_t limit, std::string& out) {
  out.clear();
  if (!z_) {
    auto s = std::make_unique<Stream>();
    if (inflateInit2(&s->z, -15) != Z_OK) return Result::corrupt;
    z_ = std::move(s);
  }
  z_stream& z = z_->z;
  static constexpr unsigned char k_tail[4] = {0x00, 0x00, 0xff, 0xff};
  Result result = Result::ok;
  bool ended = false;  // the final block came: only the appended tail may follow it
  // The message, then the tail the sender removed (RFC 7692 7.2.2).
  const std::string_view tail(reinterpret_cast<const char*>(k_tail), sizeof k_tail);
  for (const std::string_view part : {in, tail}) {
    if (ended || result != Result::ok) break;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
    z.avail_in = static_cast<uInt>(part.size());
    bool more_output = false;  // the last call filled its buffer: zlib may hold more
    while (z.avail_in > 0 || more_output) {
      // Grow in steps, never past limit + 1: the output buffer is what a bomb would inflate.
      const std::size_t room = std::min<std::size_t>(limit - out.size(), 16 * 1024 - 1) + 1;
      const std::size_t at = out.size();
      out.resize(at + room);
      z.next_out = reinterpret_cast<Bytef*>(out.data() + at);
      z.avail_out = static_cast<uInt>(room);
      const int rc = ::inflate(&z, Z_SYNC_FLUSH);
      out.resize(at + room - z.avail_out);
      if (out.size() > limit) {
        result = Result::too_big;
        break;
      }
      if (rc == Z_STREAM_END) {
        ended = true;
        if (z.avail_in > 0 && part.data() == in.data()) result = Result::corrupt;  // bytes past the end
        break;
      }
      if (rc == Z_BUF_ERROR) break;  // no progress possible: all input taken, no output pending
      if (rc != Z_OK) {
        result = Result::corrupt;
        break;
      }
      more_output = z.avail_out == 0;
    }
  }
  inflateReset(&z);  // no context takeover both ways
  return result;
}

Inflater& thread_inflater() {
  thread_local Inflater i;
  return i;
}

}  // namespace fanout::detail

#include "wire.hpp"

#include <zlib.h>

#include <stdexcept>

namespace fanout::sim::detail {

Bytes make_frame(std::uint8_t opcode, std::string_view payload, bool rsv1) {
  auto f = std::make_shared<std::string>();
  f->reserve(payload.size() + 10);
  f->push_back(char(0x80 | (rsv1 ? 0x40 : 0) | opcode));
  std::size_t n = payload.size();
  if (n < 126) {
    f->push_back(char(n));
  } else if (n < 65536) {
    f->push_back(char(126));
    f->push_back(char(n >> 8));
    f->push_back(char(n & 0xFF));
  } else {
    f->push_back(char(127));
    for (int shift = 56; shift >= 0; shift -= 8) f->push_back(char((std::uint64_t(n) >> shift) & 0xFF));
  }
  f->append(payload);
  return f;
}

// Reusable zlib deflater (deflateReset per message: no context carried between messages).
class Deflater {
 public:
  // window_bits: 9..15 for raw deflate, 31 for gzip.
  explicit Deflater(int window_bits) {
    if (deflateInit2(&zs_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw std::runtime_error("deflateInit2 failed");
    gzip_ = window_bits > 15;
  }
  ~Deflater() { deflateEnd(&zs_); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // permessage-deflate payload (sync flush, 00 00 ff ff stripped), or a complete gzip member.
  std::string compress(std::string_view in) {
    deflateReset(&zs_);
    std::string out(deflateBound(&zs_, uLong(in.size())) + 16, '\0');
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = uInt(in.size());
    std::size_t done = 0;
    for (;;) {
      zs_.next_out = reinterpret_cast<Bytef*>(out.data() + done);
      zs_.avail_out = uInt(out.size() - done);
      int rc = deflate(&zs_, gzip_ ? Z_FINISH : Z_SYNC_FLUSH);
      done = out.size() - zs_.avail_out;
      if (rc == Z_STREAM_END || (rc == Z_OK && zs_.avail_out != 0)) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
      out.resize(out.size() * 2);
    }
    out.resize(done);
    if (!gzip_ && out.size() >= 4 && out.compare(out.size() - 4, 4, std::string_view("\x00\x00\xff\xff", 4)) == 0)
      out.resize(out.size() - 4);
    return out;
  }

 private:
  z_stream zs_{};
  bool gzip_ = false;
};

bool inflate_message(std::string_view in, std::size_t limit, std::string& out) {
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) return false;
  std::string input(in);
  input.append("\x00\x00\xff\xff", 4);
  zs.next_in = reinterpret_cast<Bytef*>(input.data());
  zs.avail_in = uInt(input.size());
  std::array<char, 16384> buf;
  bool ok = true;
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = uInt(buf.size());
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
    if (out.size() > limit) {
      ok = false;
      break;
    }
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK) {
      if (zs.avail_in == 0 && zs.avail_out != 0) break;
      continue;
    }
    ok = rc == Z_BUF_ERROR && zs.avail_in == 0;
    break;
  }
  inflateEnd(&zs);
  return ok;
}

Codecs::Codecs() = default;
Codecs::~Codecs() = default;

std::string Codecs::deflate(std::string_view in, int window_bits) {
  auto& d = raw_[std::size_t(window_bits)];
  if (!d) d = std::make_unique<Deflater>(-window_bits);
  return d->compress(in);
}

std::string Codecs::gzip(std::string_view in) {
  if (!gzip_) gzip_ = std::make_unique<Deflater>(31);
  return gzip_->compress(in);
}

const Bytes& Message::text() {
  if (!text_) text_ = make_frame(k_text, payload_);
  return text_;
}

const Bytes& Message::deflated(int window_bits) {
  auto& f = deflated_[std::size_t(window_bits)];
  if (!f) f = make_frame(k_text, codecs_.deflate(payload_, window_bits), true);
  return f;
}

const Bytes& Message::gzip() {
  if (!gzip_) gzip_ = make_frame(k_binary, codecs_.gzip(payload_));
  return gzip_;
}

}  // namespace fanout::sim::detail

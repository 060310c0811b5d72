#include "fanout/frame.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <stdexcept>

#include "fanout/detail/deflate_stats.hpp"
#include "fanout/detail/deflater.hpp"
#include "fanout/detail/queue_memory.hpp"

namespace fanout {

std::size_t Frame::encode_header(Opcode op, std::uint64_t n, std::byte* out) noexcept {
  out[0] = std::byte{0x80} | static_cast<std::byte>(op);
  if (n < 126) {
    out[1] = static_cast<std::byte>(n);
    return 2;
  }
  if (n <= 0xFFFF) {
    out[1] = std::byte{126};
    out[2] = static_cast<std::byte>(n >> 8);
    out[3] = static_cast<std::byte>(n);
    return 4;
  }
  out[1] = std::byte{127};
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<std::byte>(n >> (56 - 8 * i));
  return 10;
}

Frame* Frame::allocate(std::size_t total, std::uint8_t header_size, Opcode op, Meta meta) {
  if (total > UINT32_MAX) throw std::length_error("fanout: frame larger than 4 GiB");
  void* mem = ::operator new(sizeof(Frame) + total);
  detail::queue_memory().frame_bytes.fetch_add(sizeof(Frame) + total, std::memory_order_relaxed);
  return new (mem) Frame(static_cast<std::uint32_t>(total), header_size, op, meta);
}

FrameRef Frame::make(Opcode op, std::string_view payload, Meta meta) {
  std::byte header[10];
  const std::size_t h = encode_header(op, payload.size(), header);
  Frame* f = allocate(h + payload.size(), static_cast<std::uint8_t>(h), op, meta);
  std::memcpy(f->data(), header, h);
  if (!payload.empty()) std::memcpy(f->data() + h, payload.data(), payload.size());
  return FrameRef(f);
}

FrameRef Frame::make_raw(std::span<const std::byte> encoded) {
  const auto op = encoded.empty() ? Opcode::binary : static_cast<Opcode>(encoded[0] & std::byte{0x0F});
  Frame* f = allocate(encoded.size(), 0, op);
  if (!encoded.empty()) std::memcpy(f->data(), encoded.data(), encoded.size());
  return FrameRef(f);
}

FrameRef Frame::make_close(std::uint16_t code, std::string_view reason) {
  char body[125];
  body[0] = static_cast<char>(code >> 8);
  body[1] = static_cast<char>(code & 0xFF);
  // Truncate on a UTF-8 boundary so the reason stays valid text.
  std::size_t n = std::min<std::size_t>(reason.size(), sizeof body - 2);
  while (n < reason.size() && n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  std::memcpy(body + 2, reason.data(), n);
  return make(Opcode::close, {body, n + 2});
}

const Frame* Frame::deflated(std::size_t threshold) const noexcept {
  constexpr std::uintptr_t k_none = 0, k_busy = 1, k_skip = 2;
  std::uintptr_t state = deflated_.load(std::memory_order_acquire);
  if (state > k_skip) return reinterpret_cast<const Frame*>(state);
  const std::size_t n = size_ - header_size_;
  if (state == k_busy) {
    detail::deflate_stats().raced.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (state != k_none || header_size_ == 0 || n < threshold || (opcode_ != Opcode::text && opcode_ != Opcode::binary))
    return nullptr;
  // One thread makes it; one racing it sends this frame meanwhile rather than wait or compress twice.
  if (!deflated_.compare_exchange_strong(state, k_busy, std::memory_order_acq_rel)) {
    if (state == k_busy) detail::deflate_stats().raced.fetch_add(1, std::memory_order_relaxed);
    return state > k_skip ? reinterpret_cast<const Frame*>(state) : nullptr;
  }
  thread_local std::string out;
  Frame* f = nullptr;
  try {
    if (detail::thread_deflater().compress(payload_view(), out) && out.size() + 4 < n) {
      std::byte header[10];
      const std::size_t h = encode_header(opcode_, out.size(), header);
      header[0] |= std::byte{0x40};  // RSV1: this message is compressed
      f = allocate(h + out.size(), static_cast<std::uint8_t>(h), opcode_, {seq_, key_hash_});
      std::memcpy(f->data(), header, h);
      std::memcpy(f->data() + h, out.data(), out.size());
      f->published_ns_.store(published_ns(), std::memory_order_relaxed);
    }
  } catch (const std::bad_alloc&) {
    f = nullptr;  // sent uncompressed
  }
  auto& stats = detail::deflate_stats();
  stats.compressions.fetch_add(1, std::memory_order_relaxed);
  if (f) stats.bytes_saved.fetch_add(size_ - f->size_, std::memory_order_relaxed);
  if (out.capacity() > (256u << 10)) std::string().swap(out);  // a huge message leaves no huge buffer behind
  deflated_.store(f ? reinterpret_cast<std::uintptr_t>(f) : k_skip, std::memory_order_release);
  return f;
}

void Frame::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (const auto d = deflated_.load(std::memory_order_acquire); d > 2) reinterpret_cast<Frame*>(d)->release();
    detail::queue_memory().frame_bytes.fetch_sub(sizeof(Frame) + size_, std::memory_order_relaxed);
    if (delta_) FrameRef::adopt(delta_);  // releases it
    this->~Frame();
    ::operator delete(static_cast<void*>(this));
  }
}

}  // namespace fanout

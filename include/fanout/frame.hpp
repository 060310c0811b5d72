// fanout/frame.hpp — one complete server-to-client WebSocket frame, encoded once, shared by reference.
//
// A publish turns its payload into one Frame: header and payload in a single allocation, immutable
// afterwards. Every session that delivers it holds a FrameRef, so N recipients cost N reference
// counts, not N copies. Server frames are unmasked (RFC 6455 5.1), so the bytes are the same for
// every client.
//
// Thread safety: a Frame is immutable; FrameRef may be copied and destroyed from any thread.
//
//   auto f = fanout::Frame::make(fanout::Opcode::text, R"({"px":1})");
//   socket.write_some(asio::buffer(f->bytes().data(), f->bytes().size()));
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "fanout/export.hpp"

namespace fanout {

enum class Opcode : std::uint8_t { continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA };

class FrameRef;
namespace detail {
struct DeltaForms;
}

/// What a published frame carries besides its bytes: its topic's seq, and a hash of its key
/// (0: none) that conflation uses to keep the newest frame per (topic, key).
struct FANOUT_API FrameMeta {
  std::uint64_t seq = 0;
  std::uint32_t key_hash = 0;
};

class FANOUT_API Frame {
 public:
  using Meta = FrameMeta;

  /// Encodes a final (FIN) frame around `payload`. One allocation.
  static FrameRef make(Opcode op, std::string_view payload, Meta meta = {});
  /// Wraps bytes that are already a complete encoded frame (or several), e.g. from wslay.
  static FrameRef make_raw(std::span<const std::byte> encoded);
  /// A close frame with a status code and a reason (truncated to fit the 125-byte control limit).
  static FrameRef make_close(std::uint16_t code, std::string_view reason);

  std::span<const std::byte> bytes() const noexcept { return {data(), size_}; }
  std::span<const std::byte> payload() const noexcept { return {data() + header_size_, size_ - header_size_}; }
  std::string_view payload_view() const noexcept {
    return {reinterpret_cast<const char*>(data() + header_size_), size_ - header_size_};
  }
  std::size_t size() const noexcept { return size_; }
  Opcode opcode() const noexcept { return opcode_; }
  std::uint64_t seq() const noexcept { return seq_; }
  std::uint32_t key_hash() const noexcept { return key_hash_; }

  /// When Hub::publish posted this frame (steady clock, ns since its epoch); 0 if never published.
  /// Read when a write carries the frame, for the publish-to-write latency histogram.
  std::int64_t published_ns() const noexcept { return published_ns_.load(std::memory_order_relaxed); }
  void stamp_published(std::int64_t ns) const noexcept { published_ns_.store(ns, std::memory_order_relaxed); }

  /// Subscriptions with `"delta":"fossil"` (detail/delta_forms.hpp). On a frame of their form: the same
  /// message as a Fossil delta against the previous message of its key (nullptr when none is worth
  /// sending) and that message's seq. On a delta, full() is the frame it stands for; else itself.
  bool delta_form() const noexcept { return delta_form_; }
  const Frame* delta() const noexcept { return delta_; }
  std::uint64_t delta_base() const noexcept { return delta_base_; }
  const Frame* full() const noexcept { return full_ ? full_ : this; }

  /// The permessage-deflate form of this text or binary frame (RSV1 set, payload compressed with no
  /// context, RFC 7692), made once by its first caller and kept for every later one: compress-once for
  /// all clients that negotiated it. Null when not worth it (payload under `threshold` bytes, or not
  /// smaller compressed) or while another thread is making it: the caller then sends this frame,
  /// as RSV1 clear is legal on any message. Lives as long as this frame.
  const Frame* deflated(std::size_t threshold) const noexcept;

  /// Writes the header of an unmasked FIN frame into `out` (at least 10 bytes); returns its length.
  static std::size_t encode_header(Opcode op, std::uint64_t payload_size, std::byte* out) noexcept;

 private:
  friend class FrameRef;
  friend struct detail::DeltaForms;
  Frame(std::uint32_t size, std::uint8_t header_size, Opcode op, Meta meta) noexcept
      : size_(size), header_size_(header_size), opcode_(op), key_hash_(meta.key_hash), seq_(meta.seq) {}
  static Frame* allocate(std::size_t total, std::uint8_t header_size, Opcode op, Meta meta = {});
  std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  const std::byte* data() const noexcept { return reinterpret_cast<const std::byte*>(this + 1); }
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  std::atomic<std::uint32_t> refs_{1};
  mutable std::atomic<std::int64_t> published_ns_{0};  // a timestamp, not content: set by publish
  // deflated(): 0 not tried, 1 being made, 2 not worth it, else the compressed Frame (one reference).
  mutable std::atomic<std::uintptr_t> deflated_{0};
  std::uint32_t size_;
  std::uint8_t header_size_;
  Opcode opcode_;
  bool delta_form_ = false;
  std::uint32_t key_hash_;
  std::uint64_t seq_;
  // Set once, before the frame is shared (DeltaForms). delta_ holds a reference; full_ does not
  // (a delta lives no longer than its full frame, which owns it).
  const Frame* delta_ = nullptr;
  const Frame* full_ = nullptr;
  std::uint64_t delta_base_ = 0;
};

/// Intrusive shared reference to a Frame. Same size as a pointer.
class FANOUT_API FrameRef {
 public:
  FrameRef() noexcept = default;
  FrameRef(const FrameRef& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
  }
  FrameRef(FrameRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  FrameRef& operator=(FrameRef o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~FrameRef() {
    if (p_) p_->release();
  }

  const Frame* get() const noexcept { return p_; }
  const Frame* operator->() const noexcept { return p_; }
  const Frame& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Gives up ownership without releasing; pair with adopt(). Used by queues that store raw pointers.
  const Frame* detach() noexcept { return std::exchange(p_, nullptr); }
  static FrameRef adopt(const Frame* f) noexcept {
    FrameRef r;
    r.p_ = const_cast<Frame*>(f);
    return r;
  }
  /// A new reference to a frame someone else owns.
  static FrameRef share(const Frame* f) noexcept {
    FrameRef r;
    r.p_ = const_cast<Frame*>(f);
    if (f) r.p_->add_ref();
    return r;
  }

 private:
  friend class Frame;
  explicit FrameRef(Frame* p) noexcept : p_(p) {}
  Frame* p_ = nullptr;
};

}  // namespace fanout

#include "fanout/detail/frame_reader.hpp"

#include <openssl/rand.h>

#include "fanout/detail/inflater.hpp"

#include <wslay/wslay.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace fanout::detail {
namespace {
using InflateResult = Inflater::Result;
InflateResult inflate_message(std::string_view in, std::size_t limit, std::string& out) {
  try {
    return thread_inflater().inflate(in, limit, out);
  } catch (const std::bad_alloc&) {
    return InflateResult::too_big;  // inside a wslay callback: no exception may cross C
  }
}
}  // namespace

void FrameReader::Boundary::feed(const std::byte* p, std::size_t n) noexcept {
  while (n > 0) {
    if (payload_left > 0) {
      const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left, n));
      payload_left -= k;
      p += k;
      n -= k;
      continue;
    }
    header[header_len++] = static_cast<std::uint8_t>(*p++);
    --n;
    if (header_len < 2) continue;
    const std::uint8_t len7 = header[1] & 0x7F;
    const std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header[1] & 0x80) ? 4 : 0);
    if (header_len < need) continue;
    std::uint64_t len = len7;
    if (len7 == 126) len = (std::uint64_t{header[2]} << 8) | header[3];
    if (len7 == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | header[2 + i];
    }
    const bool fin = header[0] & 0x80;
    const std::uint8_t opcode = header[0] & 0x0F;
    if (opcode == 0x1 || opcode == 0x2)
      message_open = !fin;
    else if (opcode == 0x0 && fin)
      message_open = false;
    payload_left = len;
    header_len = 0;
  }
}

FrameReader::FrameReader(std::size_t max_message_bytes, Role role, bool deflate)
    : max_message_bytes_(max_message_bytes), inflate_(deflate) {
  static constexpr wslay_event_callbacks callbacks{
      [](wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user) -> ssize_t {
        auto& r = *static_cast<FrameReader*>(user);
        if (r.in_left_ == 0) {
          wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
          return -1;
        }
        const std::size_t n = std::min(len, r.in_left_);
        std::memcpy(buf, r.in_, n);
        r.in_ += n;
        r.in_left_ -= n;
        return static_cast<ssize_t>(n);
      },
      [](wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user) -> ssize_t {
        static_cast<FrameReader*>(user)->out_.append(reinterpret_cast<const char*>(data), len);
        return static_cast<ssize_t>(len);
      },
      // Masking keys for a client's frames (RFC 6455 5.3: unpredictable).
      [](wslay_event_context_ptr, uint8_t* buf, size_t len, void*) -> int {
        return RAND_bytes(buf, static_cast<int>(len)) == 1 ? 0 : -1;
      },
      nullptr,
      nullptr,
      nullptr,
      [](wslay_event_context_ptr ctx, const wslay_event_on_msg_recv_arg* arg, void* user) {
        auto& r = *static_cast<FrameReader*>(user);
        const auto op = static_cast<Opcode>(arg->opcode);
        if ((arg->rsv & WSLAY_RSV1_BIT) && r.inflate_) {
          // Compressed (RFC 7692) with no context: only data messages may be; inflated within the message
          // bound. (A reader that keeps context, the upstream's, calls allow_rsv1 and inflates itself.)
          if (op != Opcode::text && op != Opcode::binary) {
            r.protocol_error_ = true;
            return;
          }
          std::string inflated;
          const std::string_view in(reinterpret_cast<const char*>(arg->msg), arg->msg_length);
          switch (inflate_message(in, r.max_message_bytes_, inflated)) {
            case InflateResult::ok: r.messages_.push_back(Message{op, std::move(inflated)}); return;
            case InflateResult::too_big: wslay_event_queue_close(ctx, 1009, nullptr, 0); return;
            case InflateResult::corrupt: wslay_event_queue_close(ctx, 1007, nullptr, 0); return;
          }
        }
        // A close payload of one byte cannot hold a status code (RFC 6455 5.5.1).
        if (op == Opcode::close && arg->msg_length == 1) r.protocol_error_ = true;
        if (op == Opcode::ping) ++r.pings_;
        if (op == Opcode::pong) ++r.pongs_;
        if (op == Opcode::text || op == Opcode::binary || op == Opcode::close)
          r.messages_.push_back(Message{op, std::string(reinterpret_cast<const char*>(arg->msg), arg->msg_length),
                                        (arg->rsv & WSLAY_RSV1_BIT) != 0});
      },
  };
  const int rv = role == Role::server ? wslay_event_context_server_init(&ctx_, &callbacks, this)
                                      : wslay_event_context_client_init(&ctx_, &callbacks, this);
  if (rv != 0) throw std::bad_alloc();
  wslay_event_config_set_max_recv_msg_length(ctx_, max_message_bytes);
  if (deflate) wslay_event_config_set_allowed_rsv_bits(ctx_, WSLAY_RSV1_BIT);
}

FrameReader::~FrameReader() {
  if (ctx_) wslay_event_context_free(ctx_);
}

bool FrameReader::feed(std::span<const std::byte> data) {
  in_ = data.data();
  in_left_ = data.size();
  boundary_.feed(data.data(), data.size());
  if (wslay_event_recv(ctx_) != 0 || protocol_error_) return false;
  // Whatever wslay answers (pong, close with 1002/1007/1009, the echo of the client's close).
  if (wslay_event_want_write(ctx_)) wslay_event_send(ctx_);
  return true;
}

bool FrameReader::send(Opcode op, std::string_view payload) {
  const wslay_event_msg msg{static_cast<std::uint8_t>(op), reinterpret_cast<const uint8_t*>(payload.data()),
                            payload.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return false;
  wslay_event_send(ctx_);
  return true;
}

bool FrameReader::send_close(std::uint16_t code, std::string_view reason) {
  if (wslay_event_queue_close(ctx_, code, reinterpret_cast<const uint8_t*>(reason.data()), reason.size()) != 0)
    return false;
  wslay_event_send(ctx_);
  return true;
}

void FrameReader::allow_rsv1() noexcept { wslay_event_config_set_allowed_rsv_bits(ctx_, WSLAY_RSV1_BIT); }

std::uint16_t FrameReader::close_code_received() const noexcept {
  return wslay_event_get_close_received(ctx_) ? wslay_event_get_status_code_received(ctx_) : 0;
}

std::uint16_t FrameReader::close_code_sent() const noexcept {
  return wslay_event_get_close_sent(ctx_) ? wslay_event_get_status_code_sent(ctx_) : 0;
}

bool FrameReader::close_received() const noexcept { return wslay_event_get_close_received(ctx_); }

bool FrameReader::finished() const noexcept {
  return wslay_event_get_close_sent(ctx_) || !wslay_event_get_read_enabled(ctx_);
}

bool FrameReader::idle() const noexcept { return boundary_.idle(); }

}  // namespace fanout::detail

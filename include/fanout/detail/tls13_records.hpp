// fanout/detail/tls13_records.hpp — the TLS 1.3 record layer (RFC 8446 §5) of a connection whose
// handshake OpenSSL did: once the handshake is over, a wss session hands its traffic secrets here and
// frees its SSL object, which is most of what an idle wss connection costs (~14 KiB: the SSL object,
// two cipher contexts, the handshake's leftovers; docs/benchmarks.md). What stays per connection is
// this object (~250 B: secrets, keys, IVs, sequence numbers); the AEAD contexts are per thread and
// take the connection's key when its turn comes. This is what kernel TLS does with the same secrets
// (and rustls' dangerous_extract_secrets() exists for); OpenSSL 3.0 has no public record layer to
// keep, so the record framing is written here, with OpenSSL's EVP doing all cryptography.
//
//   auto r = Tls13Records::make(protocol_id, client_secret, server_secret, server_records_sent);
//   n = r->seal(pieces, bytes, out);                // one application data record
//   r->open(received, [&](std::span<const std::byte> plain) { ...; return true; });  // more, or why not
//
// Post-handshake messages: KeyUpdate is honoured (and answered once when asked: key_update_due());
// anything else, a bad tag, a record over 2^14 + 256 bytes or an unprotected record is fatal, with the
// alert to send (seal_alert). The server initiates a KeyUpdate itself before a key has protected
// 2^24 records (RFC 8446 §5.5 for AES-GCM).
// Thread safety: one connection's object on one thread at a time; thread_local cipher contexts.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

namespace fanout::detail {

class Tls13Records {
 public:
  static constexpr std::size_t k_header = 5;
  static constexpr std::size_t k_tag = 16;
  static constexpr std::size_t k_max_plain = 16384;                          // 2^14 bytes of content per record
  static constexpr std::size_t k_overhead = k_header + 1 + k_tag;            // header, inner content type, tag
  static constexpr std::size_t k_max_record = k_header + k_max_plain + 256;  // what a peer may send

  enum class Suite : std::uint8_t { aes_128_gcm_sha256, aes_256_gcm_sha384, chacha20_poly1305_sha256 };
  enum ContentType : std::uint8_t { alert = 21, handshake = 22, application_data = 23 };
  enum Alert : std::uint8_t {
    close_notify = 0,
    unexpected_message = 10,
    bad_record_mac = 20,
    record_overflow = 22,
    illegal_parameter = 47,
    decode_error = 50,
    internal_error = 80,
  };

  /// The suite of a TLS 1.3 cipher suite's protocol id (0x1301..0x1303); false for any other.
  static bool suite_of(std::uint16_t protocol_id, Suite& out) noexcept;

  /// From the application traffic secrets (the key log's CLIENT_/SERVER_TRAFFIC_SECRET_0) and how
  /// many records the server already protected with its secret (session tickets); the client's
  /// first record under its secret is number 0. Null when the secrets do not fit the suite or a key
  /// cannot be derived.
  static std::unique_ptr<Tls13Records> make(std::uint16_t protocol_id, std::span<const std::uint8_t> client_secret,
                                            std::span<const std::uint8_t> server_secret,
                                            std::uint64_t server_records_sent);
  ~Tls13Records();

  /// Protects `bytes` bytes (at most k_max_plain) gathered from `pieces` as one record of `type`,
  /// written to `out` (room for bytes + k_overhead); returns the record's size, 0 when the cipher
  /// failed (nothing usable was written; end the connection).
  std::size_t seal(std::span<const iovec> pieces, std::size_t bytes, std::byte* out,
                   ContentType type = application_data);
  std::size_t seal(std::span<const std::byte> plain, std::byte* out, ContentType type = application_data);

  /// A KeyUpdate must go out before the next application data: the peer asked for one, or the
  /// write key is near its limit. seal_key_update writes it (k_overhead + 5 bytes) and moves the
  /// write side to the next secret. The server only answers or renews (update_not_requested);
  /// request_update = true asks the peer to update too, what a client does (tests, fuzzer).
  bool key_update_due() const noexcept { return key_update_due_ || write_.seq >= k_records_per_key; }
  std::size_t seal_key_update(std::byte* out, bool request_update = false);

  /// A fatal alert record (k_overhead + 2 bytes), or 0.
  std::size_t seal_alert(Alert what, std::byte* out);

  enum class End : std::uint8_t {
    more,         // every complete record was taken; a partial one is kept for the next call
    stopped,      // the sink returned false: the rest was not looked at
    peer_closed,  // the peer sent an alert (close_notify or its own error): it writes nothing more
    fatal,        // a protocol error: send seal_alert(fatal_alert()), then close
  };

  /// Opens every complete record in `received` (decrypted in place) and gives the application
  /// data to `sink` (bool(std::span<const std::byte>): false stops); keeps a trailing partial
  /// record (at most k_max_record bytes, only while one is pending). After fatal or peer_closed
  /// it returns the same again and looks at nothing.
  template <class Sink>
  End open(std::span<std::byte> received, Sink&& sink) {
    using F = std::remove_reference_t<Sink>;  // an lvalue sink makes Sink a reference
    return open(
        received, +[](void* s, std::span<const std::byte> plain) { return (*static_cast<F*>(s))(plain); },
        const_cast<void*>(static_cast<const void*>(std::addressof(sink))));
  }
  End open(std::span<std::byte> received, bool (*sink)(void*, std::span<const std::byte>), void* ctx);

  /// The alert that goes with End::fatal.
  Alert fatal_alert() const noexcept { return alert_; }
  /// Bytes of a partial record kept between reads.
  std::size_t pending_bytes() const noexcept { return partial_size_; }

  Tls13Records(const Tls13Records&) = delete;
  Tls13Records& operator=(const Tls13Records&) = delete;

  // One direction's keys: the current traffic secret (for KeyUpdate), key, IV, next sequence number.
  struct Direction {
    std::array<std::uint8_t, 48> secret{};
    std::array<std::uint8_t, 32> key{};
    std::array<std::uint8_t, 12> iv{};
    std::uint64_t seq = 0;
    std::uint64_t key_id = 0;  // names this key to the thread's cipher context (set it only on change)
  };

 private:
  static constexpr std::uint64_t k_records_per_key = std::uint64_t{1} << 24;

  Tls13Records() = default;
  End open_records(std::span<std::byte> received, bool (*sink)(void*, std::span<const std::byte>), void* ctx);
  bool open_one(std::byte* record, std::size_t size, std::span<const std::byte>& plain, ContentType& type);
  End take(std::byte* record, std::size_t size, bool (*sink)(void*, std::span<const std::byte>), void* ctx);
  End fail(Alert a) noexcept {
    alert_ = a;
    return End::fatal;
  }

  Direction read_{};
  Direction write_{};
  Suite suite_{};
  bool key_update_due_ = false;
  End ended_ = End::more;  // fatal or peer_closed, once open() returned it
  Alert alert_ = close_notify;
  std::uint16_t partial_size_ = 0;        // bytes of the partial record in partial_
  std::unique_ptr<std::byte[]> partial_;  // k_max_record bytes, only while a record is incomplete
};

}  // namespace fanout::detail

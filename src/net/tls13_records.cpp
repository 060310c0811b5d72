// The TLS 1.3 record layer after the handshake (fanout/detail/tls13_records.hpp). Record framing and
// the key schedule's last steps are RFC 8446 §5.1-5.3 and §7.1-7.3; every cipher operation is
// OpenSSL's EVP (AES-GCM, ChaCha20-Poly1305, HKDF).
#include "fanout/detail/tls13_records.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string_view>

namespace fanout::detail {
namespace {

struct SuiteInfo {
  const char* cipher;  // EVP names
  const char* digest;
  std::size_t key_len;
  std::size_t hash_len;
};

constexpr SuiteInfo k_suites[] = {
    {"AES-128-GCM", "SHA256", 16, 32},
    {"AES-256-GCM", "SHA384", 32, 48},
    {"ChaCha20-Poly1305", "SHA256", 32, 32},
};

const SuiteInfo& info(Tls13Records::Suite s) { return k_suites[static_cast<int>(s)]; }

std::uint64_t next_key_id() {
  static std::atomic<std::uint64_t> id{0};
  return id.fetch_add(1, std::memory_order_relaxed) + 1;
}

// HKDF-Expand-Label(secret, label, "", length) (RFC 8446 §7.1).
bool expand_label(const SuiteInfo& s, std::span<const std::uint8_t> secret, std::string_view label, std::uint8_t* out,
                  std::size_t length) {
  std::uint8_t hkdf_label[2 + 1 + 6 + 32 + 1];
  std::size_t n = 0;
  hkdf_label[n++] = static_cast<std::uint8_t>(length >> 8);
  hkdf_label[n++] = static_cast<std::uint8_t>(length);
  hkdf_label[n++] = static_cast<std::uint8_t>(6 + label.size());
  std::memcpy(hkdf_label + n, "tls13 ", 6);
  n += 6;
  std::memcpy(hkdf_label + n, label.data(), label.size());
  n += label.size();
  hkdf_label[n++] = 0;  // empty context

  static EVP_KDF* const hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);  // immutable, shared by threads
  if (!hkdf) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(hkdf);
  if (!ctx) return false;
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(s.digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, hkdf_label, n),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out, length, params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

// A traffic secret's key and IV (RFC 8446 §7.3); the secret itself is kept for the next KeyUpdate.
bool install(Tls13Records::Suite suite, Tls13Records::Direction& d, std::span<const std::uint8_t> secret) {
  const SuiteInfo& s = info(suite);
  if (secret.size() != s.hash_len) return false;
  std::copy(secret.begin(), secret.end(), d.secret.begin());
  if (!expand_label(s, secret, "key", d.key.data(), s.key_len) || !expand_label(s, secret, "iv", d.iv.data(), 12))
    return false;
  d.seq = 0;
  d.key_id = next_key_id();
  return true;
}

// application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length).
bool update(Tls13Records::Suite suite, Tls13Records::Direction& d) {
  const SuiteInfo& s = info(suite);
  std::uint8_t next[48];
  const bool ok = expand_label(s, {d.secret.data(), s.hash_len}, "traffic upd", next, s.hash_len) &&
                  install(suite, d, {next, s.hash_len});
  OPENSSL_cleanse(next, sizeof next);
  return ok;
}

// The calling thread's AEAD context for a suite and direction, keyed to one connection at a time:
// giving it a connection's key costs about what sealing one small record does, far less than a
// context per connection costs in memory (~1 KiB each).
struct ThreadCipher {
  EVP_CIPHER_CTX* ctx = nullptr;
  std::uint64_t key_id = 0;
  ~ThreadCipher() { EVP_CIPHER_CTX_free(ctx); }
};

EVP_CIPHER_CTX* cipher_for(Tls13Records::Suite suite, bool encrypt, const Tls13Records::Direction& d,
                           const std::uint8_t* nonce) {
  thread_local ThreadCipher contexts[3][2];
  ThreadCipher& c = contexts[static_cast<int>(suite)][encrypt];
  if (!c.ctx) {
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, info(suite).cipher, nullptr);
    c.ctx = cipher ? EVP_CIPHER_CTX_new() : nullptr;
    const bool ok = c.ctx && EVP_CipherInit_ex2(c.ctx, cipher, nullptr, nullptr, encrypt, nullptr) == 1;
    EVP_CIPHER_free(cipher);  // the context holds its own reference
    if (!ok) {
      EVP_CIPHER_CTX_free(c.ctx);
      c.ctx = nullptr;
      return nullptr;
    }
  }
  const bool same_key = c.key_id == d.key_id;
  c.key_id = 0;  // unknown until this init succeeds
  if (EVP_CipherInit_ex2(c.ctx, nullptr, same_key ? nullptr : d.key.data(), nonce, encrypt, nullptr) != 1)
    return nullptr;
  c.key_id = d.key_id;
  return c.ctx;
}

// The per-record nonce: the IV XOR the 64-bit sequence number, left-padded (RFC 8446 §5.3).
void make_nonce(const Tls13Records::Direction& d, std::uint8_t (&nonce)[12]) {
  std::memcpy(nonce, d.iv.data(), 12);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<std::uint8_t>(d.seq >> (8 * i));
}

void write_header(std::byte* out, std::size_t body) {
  out[0] = std::byte{Tls13Records::application_data};  // every protected record's outer type
  out[1] = std::byte{0x03};
  out[2] = std::byte{0x03};
  out[3] = static_cast<std::byte>(body >> 8);
  out[4] = static_cast<std::byte>(body);
}

std::size_t record_size(const std::byte* header) {
  return Tls13Records::k_header +
         (std::to_integer<std::size_t>(header[3]) << 8 | std::to_integer<std::size_t>(header[4]));
}

}  // namespace

bool Tls13Records::suite_of(std::uint16_t protocol_id, Suite& out) noexcept {
  switch (protocol_id) {
    case 0x1301: out = Suite::aes_128_gcm_sha256; return true;
    case 0x1302: out = Suite::aes_256_gcm_sha384; return true;
    case 0x1303: out = Suite::chacha20_poly1305_sha256; return true;
    default: return false;
  }
}

std::unique_ptr<Tls13Records> Tls13Records::make(std::uint16_t protocol_id, std::span<const std::uint8_t> client_secret,
                                                 std::span<const std::uint8_t> server_secret,
                                                 std::uint64_t server_records_sent) {
  std::unique_ptr<Tls13Records> r(new Tls13Records());
  if (!suite_of(protocol_id, r->suite_) || !install(r->suite_, r->read_, client_secret) ||
      !install(r->suite_, r->write_, server_secret))
    return nullptr;
  r->write_.seq = server_records_sent;
  return r;
}

Tls13Records::~Tls13Records() {
  OPENSSL_cleanse(&read_, sizeof read_);
  OPENSSL_cleanse(&write_, sizeof write_);
}

std::size_t Tls13Records::seal(std::span<const iovec> pieces, std::size_t bytes, std::byte* out, ContentType type) {
  if (bytes > k_max_plain) return 0;
  const std::size_t body = bytes + 1 + k_tag;
  write_header(out, body);
  std::uint8_t nonce[12];
  make_nonce(write_, nonce);
  EVP_CIPHER_CTX* ctx = cipher_for(suite_, true, write_, nonce);
  if (!ctx) return 0;
  auto* at = reinterpret_cast<unsigned char*>(out) + k_header;
  int n = 0;
  if (EVP_EncryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(out), k_header) != 1) return 0;
  // Small pieces are copied next to each other and encrypted in place as one run (a cipher call per
  // 200-byte frame costs more than the copy); a large one is encrypted straight from the queue.
  constexpr std::size_t k_direct = 2048;
  unsigned char* run = at;  // start of plaintext copied but not yet encrypted
  auto encrypt_run = [&] {
    if (run == at) return true;
    const bool ok = EVP_EncryptUpdate(ctx, run, &n, run, static_cast<int>(at - run)) == 1 && n == at - run;
    run = at;
    return ok;
  };
  std::size_t left = bytes;
  for (const iovec& p : pieces) {
    if (left == 0) break;
    const std::size_t len = std::min(p.iov_len, left);
    if (len == 0) continue;  // an empty piece, not the end of the gather
    if (len < k_direct) {
      std::memcpy(at, p.iov_base, len);
      at += len;
    } else {
      if (!encrypt_run()) return 0;
      if (EVP_EncryptUpdate(ctx, at, &n, static_cast<const unsigned char*>(p.iov_base), static_cast<int>(len)) != 1 ||
          static_cast<std::size_t>(n) != len)
        return 0;
      at += len;
      run = at;
    }
    left -= len;
  }
  if (left != 0) return 0;  // the pieces held fewer bytes than promised
  *at++ = type;             // TLSInnerPlaintext's content type, no padding
  if (!encrypt_run() || EVP_EncryptFinal_ex(ctx, at, &n) != 1 || n != 0) return 0;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, k_tag, at) != 1) return 0;
  ++write_.seq;
  return k_header + body;
}

std::size_t Tls13Records::seal(std::span<const std::byte> plain, std::byte* out, ContentType type) {
  const iovec piece{const_cast<std::byte*>(plain.data()), plain.size()};
  return seal({&piece, 1}, plain.size(), out, type);
}

std::size_t Tls13Records::seal_key_update(std::byte* out, bool request_update) {
  // KeyUpdate (24), 3-byte length 1, KeyUpdateRequest: update_not_requested (0) or update_requested (1).
  const std::byte key_update[] = {std::byte{24}, std::byte{0}, std::byte{0}, std::byte{1},
                                  std::byte{request_update ? std::uint8_t{1} : std::uint8_t{0}}};
  const std::size_t n = seal(key_update, out, handshake);
  if (n == 0 || !update(suite_, write_)) return 0;
  key_update_due_ = false;
  return n;
}

std::size_t Tls13Records::seal_alert(Alert what, std::byte* out) {
  const std::byte body[] = {std::byte{what == close_notify ? std::uint8_t{1} : std::uint8_t{2}}, std::byte{what}};
  return seal(body, out, alert);
}

bool Tls13Records::open_one(std::byte* record, std::size_t size, std::span<const std::byte>& plain, ContentType& type) {
  auto* body = reinterpret_cast<unsigned char*>(record) + k_header;
  const std::size_t cipher_len = size - k_header - k_tag;
  std::uint8_t nonce[12];
  make_nonce(read_, nonce);
  EVP_CIPHER_CTX* ctx = cipher_for(suite_, false, read_, nonce);
  int n = 0;
  if (!ctx || EVP_DecryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(record), k_header) != 1 ||
      EVP_DecryptUpdate(ctx, body, &n, body, static_cast<int>(cipher_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, k_tag, body + cipher_len) != 1 ||
      EVP_DecryptFinal_ex(ctx, body + cipher_len, &n) != 1)
    return false;
  ++read_.seq;
  // TLSInnerPlaintext: content, then the content type, then zero padding.
  std::size_t end = cipher_len;
  while (end > 0 && body[end - 1] == 0) --end;
  if (end == 0) {
    type = ContentType{0};  // all padding: no content type
    return true;
  }
  type = static_cast<ContentType>(body[end - 1]);
  plain = {reinterpret_cast<const std::byte*>(body), end - 1};
  return true;
}

Tls13Records::End Tls13Records::take(std::byte* record, std::size_t size,
                                     bool (*sink)(void*, std::span<const std::byte>), void* ctx) {
  if (size < k_header + 1 + k_tag) return fail(bad_record_mac);  // cannot hold a content type and a tag
  std::span<const std::byte> plain;
  ContentType type{};
  if (!open_one(record, size, plain, type)) return fail(bad_record_mac);
  if (plain.size() > k_max_plain) return fail(record_overflow);
  switch (type) {
    case application_data:
      if (!plain.empty() && !sink(ctx, plain)) return End::stopped;
      return End::more;
    case alert:
      // close_notify or the peer's own error: either way it writes nothing more.
      if (plain.size() != 2) return fail(decode_error);
      alert_ = close_notify;
      return End::peer_closed;
    case handshake: {
      // After the handshake a client may only send KeyUpdate, and it must end its record (§5.1).
      const auto* m = reinterpret_cast<const std::uint8_t*>(plain.data());
      if (plain.empty() || m[0] != 24) return fail(unexpected_message);
      if (plain.size() < 5 || m[1] != 0 || m[2] != 0 || m[3] != 1) return fail(decode_error);
      if (plain.size() > 5) return fail(unexpected_message);  // more after a key change in its record (§5.1)
      if (m[4] > 1) return fail(illegal_parameter);           // request_update is 0 or 1 (§4.6.3)
      if (!update(suite_, read_)) return fail(internal_error);
      // update_requested: answer with one KeyUpdate before the next data; several requests while
      // silent get one answer (§4.6.3).
      if (m[4] == 1) key_update_due_ = true;
      return End::more;
    }
    default: return fail(unexpected_message);
  }
}

Tls13Records::End Tls13Records::open(std::span<std::byte> received, bool (*sink)(void*, std::span<const std::byte>),
                                     void* ctx) {
  if (ended_ != End::more) return ended_;  // nothing after a fatal error or the peer's alert is looked at
  const End e = open_records(received, sink, ctx);
  if (e == End::fatal || e == End::peer_closed) {
    ended_ = e;
    partial_size_ = 0;  // a fatal header may be kept there: never finish it as a record
    partial_.reset();
  }
  return e;
}

Tls13Records::End Tls13Records::open_records(std::span<std::byte> received,
                                             bool (*sink)(void*, std::span<const std::byte>), void* ctx) {
  std::size_t at = 0;
  // Every record after the handshake is protected (outer type application_data), at most 2^14 + 256 bytes.
  auto check_header = [this](const std::byte* h) {
    if (h[0] != std::byte{application_data}) return fail(unexpected_message);
    if (record_size(h) > k_max_record) return fail(record_overflow);
    return End::more;
  };
  if (partial_size_ > 0) {  // finish the record the last read ended in
    if (partial_size_ < k_header) {
      const std::size_t k = std::min(k_header - partial_size_, received.size());
      std::memcpy(partial_.get() + partial_size_, received.data(), k);
      partial_size_ += static_cast<std::uint16_t>(k);
      at = k;
      if (partial_size_ < k_header) return End::more;
      if (check_header(partial_.get()) != End::more) return End::fatal;
    }
    const std::size_t size = record_size(partial_.get());
    const std::size_t k = std::min(size - partial_size_, received.size() - at);
    std::memcpy(partial_.get() + partial_size_, received.data() + at, k);
    partial_size_ += static_cast<std::uint16_t>(k);
    at += k;
    if (partial_size_ < size) return End::more;
    const End e = take(partial_.get(), size, sink, ctx);
    partial_size_ = 0;
    partial_.reset();  // the buffer is only held while a record is incomplete
    if (e != End::more) return e;
  }
  while (received.size() - at >= k_header) {
    std::byte* h = received.data() + at;
    if (check_header(h) != End::more) return End::fatal;
    const std::size_t size = record_size(h);
    if (received.size() - at < size) break;
    const End e = take(h, size, sink, ctx);
    if (e != End::more) return e;
    at += size;
  }
  if (at < received.size()) {
    const std::size_t rest = received.size() - at;
    if (rest >= k_header && check_header(received.data() + at) != End::more) return End::fatal;
    partial_ = std::make_unique_for_overwrite<std::byte[]>(k_max_record);
    std::memcpy(partial_.get(), received.data() + at, rest);
    partial_size_ = static_cast<std::uint16_t>(rest);
  }
  return End::more;
}

}  // namespace fanout::detail

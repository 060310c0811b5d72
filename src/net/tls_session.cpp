// A session over TLS (wss://). Like PlainSession, its descriptor waits in the shard's Poller and
// reads go into the shard's scratch buffer; OpenSSL is driven directly on the descriptor instead of
// through asio::ssl::stream, whose engine keeps two 17 KB buffers and a BIO pair per connection.
// With SSL_MODE_RELEASE_BUFFERS OpenSSL frees its record buffers whenever no record is in flight,
// so an idle connection holds only the SSL object and its cipher state (docs/benchmarks.md, tls).
//
// Writes: each TLS record carries up to 16 KiB of queued frames, copied into a per-thread scratch
// buffer (small frames would otherwise cost a record and a syscall each; a frame that fills a whole
// record is encrypted in place). When the socket is full, OpenSSL keeps the encrypted record and
// wants the same bytes offered again: they are copied into a buffer of the session's own and taken
// off the queue, so the backpressure policy can still drop or conflate everything behind them.
//
// TLS 1.3 (Server::Tls::own_records, on by default): OpenSSL does the handshake, then the session
// takes the application traffic secrets from the key log, frees the SSL object and protects records
// itself (detail/tls13_records.hpp): an idle wss connection then costs what a ws one does plus ~250
// bytes, and a write seals up to two 16 KiB records straight from the queue into one send().
// TLS 1.2 connections, and any the hand-over does not fit, stay with OpenSSL throughout.
#include "fanout/detail/gather.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

#ifdef FANOUT_WITH_TLS
#include <sys/epoll.h>
#include <sys/socket.h>

#include "fanout/detail/polled_session.hpp"
#include "fanout/detail/tls13_records.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/post.hpp>
#include <asio/ssl/context.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

namespace fanout {
namespace detail {
namespace {

// ---- a socket BIO that never raises SIGPIPE
// OpenSSL's own socket BIO write()s, and a peer that reset the connection would kill a process that
// did not ignore SIGPIPE (a library must not change that for its users); send() takes MSG_NOSIGNAL.

int fd_of(BIO* b) noexcept { return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b))); }

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n;
  do n = ::send(fd_of(b), data, static_cast<std::size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n;
  do n = ::recv(fd_of(b), out, static_cast<std::size_t>(len), MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(b);
  return static_cast<int>(n);
}

long bio_ctrl(BIO* b, int cmd, long, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;  // nothing is buffered here
    case BIO_C_GET_FD:              // SSL_get_fd
      if (ptr) *static_cast<int*>(ptr) = fd_of(b);
      return fd_of(b);
    default: return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* socket_method() {
  // Made once and shared by every shard thread (read-only after this).
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "fanout socket");
    if (!m || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
        !BIO_meth_set_create(m, bio_create))
      throw std::bad_alloc();
    return m;
  }();
  return method;
}

// Plaintext bytes per TLS record: what one SSL_write sends with SSL_MODE_ENABLE_PARTIAL_WRITE.
constexpr std::size_t k_record = SSL3_RT_MAX_PLAIN_LENGTH;

// Where small frames are gathered into one record; only used during one SSL_write call.
std::byte* record_scratch() {
  thread_local const auto buf = std::make_unique_for_overwrite<std::byte[]>(k_record);
  return buf.get();
}

// Records sealed per send() with our own record layer: two keep a blocked write's copy (what the
// socket did not take) within what OpenSSL's record buffer and its copy held before.
constexpr std::size_t k_records_per_send = 2;
constexpr std::size_t k_send_plain = k_records_per_send * Tls13Records::k_max_plain;

// Where records are sealed for one send(); only used during one flush call.
std::byte* sealed_scratch() {
  thread_local const auto buf = std::make_unique_for_overwrite<std::byte[]>(
      k_records_per_send * (Tls13Records::k_max_plain + Tls13Records::k_overhead) + Tls13Records::k_overhead +
      5);  // + a KeyUpdate
  return buf.get();
}

// What the hand-over to Tls13Records needs from the handshake, gathered from OpenSSL's callbacks:
// the key log's application traffic secrets, and how many records the server protected with its
// secret before the handshake returned (its session tickets).
struct HandshakeSecrets {
  std::uint8_t client[48];
  std::uint8_t server[48];
  std::uint8_t client_len = 0;
  std::uint8_t server_len = 0;
  bool counting = false;  // the server's application secret is in use: its records are counted
  std::uint32_t server_records = 0;

  ~HandshakeSecrets() { OPENSSL_cleanse(this, sizeof *this); }
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<LABEL> <client random> <secret>" (the NSS key log format OpenSSL writes); false if malformed.
bool parse_key_log(std::string_view line, std::string_view& label, std::uint8_t (&secret)[48], std::uint8_t& len) {
  const auto a = line.find(' ');
  const auto b = a == std::string_view::npos ? a : line.find(' ', a + 1);
  if (b == std::string_view::npos) return false;
  label = line.substr(0, a);
  const std::string_view hex = line.substr(b + 1);
  if (hex.size() % 2 != 0 || hex.size() > 2 * sizeof secret) return false;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    secret[i / 2] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  len = static_cast<std::uint8_t>(hex.size() / 2);
  return true;
}

class TlsSession final : public PolledSession<TlsSession> {
 public:
  using PolledSession::PolledSession;
  ~TlsSession() override {
    if (ssl_) SSL_free(ssl_);
  }

  /// The key log callback of the server's SSL_CTX (prepare_tls_context): keeps the application
  /// traffic secrets of a session that will hand its records over.
  static void on_key_log(const SSL* ssl, const char* line) {
    auto* self = static_cast<TlsSession*>(SSL_get_app_data(ssl));
    if (!self || !self->secrets_) return;
    HandshakeSecrets& h = *self->secrets_;
    std::string_view label;
    std::uint8_t secret[48];
    std::uint8_t len = 0;
    if (!parse_key_log(line, label, secret, len)) return;
    if (label == "CLIENT_TRAFFIC_SECRET_0") {
      std::memcpy(h.client, secret, len);
      h.client_len = len;
    } else if (label == "SERVER_TRAFFIC_SECRET_0") {
      // Logged as the server's writes switch to it, after its Finished went out: every record
      // written from here on is protected with it (the session tickets).
      std::memcpy(h.server, secret, len);
      h.server_len = len;
      h.counting = true;
      h.server_records = 0;
    }
    OPENSSL_cleanse(secret, sizeof secret);
  }

  void flush() override {
    if (waiting_writable_ || state_ == State::closed || !tls_ready_) return;
    if (records_) {
      flush_records();
      return;
    }
    pull_due();
    std::byte* scratch = record_scratch();
    iovec iov[64];
    while (!queue_.empty()) {
      const std::size_t count = gather(queue_, iov, 64, k_record);
      const std::int64_t first_published = head_published_ns();
      const std::byte* data = static_cast<const std::byte*>(iov[0].iov_base);
      std::size_t n = k_record;
      if (iov[0].iov_len < k_record) {  // gather small frames into one record
        n = 0;
        for (std::size_t i = 0; i < count && n < k_record; ++i) {
          const std::size_t k = std::min(iov[i].iov_len, k_record - n);
          std::memcpy(scratch + n, iov[i].iov_base, k);
          n += k;
        }
        data = scratch;
      }
      ERR_clear_error();  // SSL_get_error reads this thread's queue
      const int r = SSL_write(ssl_, data, static_cast<int>(n));
      if (r > 0) {
        count_write(first_published);
        on_written(static_cast<std::size_t>(r));
        if (state_ == State::closed) return;
        continue;
      }
      const int err = SSL_get_error(ssl_, r);
      if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
        fail_later();  // reset by peer, broken pipe, a TLS alert: nobody left to write to
        return;
      }
      // The record is encrypted and OpenSSL will send it before anything else: its bytes leave
      // the queue now, and the retry offers a copy of them (the frames may be dropped meanwhile).
      blocked_ = std::make_unique_for_overwrite<std::byte[]>(n);
      std::memcpy(blocked_.get(), data, n);
      blocked_size_ = static_cast<std::uint32_t>(n);
      blocked_published_ = first_published;
      take_written(n);
      wait_to_write(err == SSL_ERROR_WANT_READ);
      return;
    }
  }

 protected:
  void shutdown_send() override {}  // the peer's close reply or close_timeout ends the session

  void set_reading(bool on) override {
    update_interest(true);
    // Records OpenSSL already decrypted do not wake epoll: take them now.
    if (on && ssl_) read_pending_later();
  }

 private:
  friend PolledSession;

  /// Sets up OpenSSL on the descriptor (before the Poller watches it); false when out of memory.
  bool open_transport(SSL_CTX* ctx, bool own_records) {
    ssl_ = SSL_new(ctx);
    BIO* bio = ssl_ ? BIO_new(socket_method()) : nullptr;
    if (!bio) {  // out of memory: refuse this one
      ERR_clear_error();
      ShardCounters::add(owner_.rejected, 1);
      finish();
      return false;
    }
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd_)));
    SSL_set_bio(ssl_, bio, bio);
    // RELEASE_BUFFERS: no record buffers while idle. PARTIAL_WRITE: SSL_write returns after each
    // record. MOVING_WRITE_BUFFER: a blocked record is retried from the session's copy of its bytes.
    SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_accept_state(ssl_);
    if (own_records) {
      SSL_set_app_data(ssl_, this);
      secrets_ = std::make_unique<HandshakeSecrets>();
      SSL_set_msg_callback(ssl_, count_written_records);
      SSL_set_msg_callback_arg(ssl_, secrets_.get());
    }
    return true;
  }

  static void count_written_records(int write_p, int, int content_type, const void*, std::size_t, SSL*, void* arg) {
    auto* h = static_cast<HandshakeSecrets*>(arg);
    if (write_p && content_type == SSL3_RT_HEADER && h->counting) ++h->server_records;
  }

  void release_transport() {
    SSL_free(ssl_);  // no close_notify: the WebSocket close handshake already said goodbye
    ssl_ = nullptr;
    blocked_.reset();
    records_.reset();
    secrets_.reset();
  }

  /// After a TLS 1.3 handshake: the records go to Tls13Records and the SSL object is freed. False
  /// (OpenSSL keeps the connection) for TLS 1.2, a suite outside RFC 8446's three, missing secrets,
  /// or records OpenSSL already read beyond the handshake.
  bool hand_over_records() {
    std::unique_ptr<HandshakeSecrets> h = std::move(secrets_);
    if (!h || SSL_version(ssl_) != TLS1_3_VERSION || SSL_has_pending(ssl_) || !h->counting) return false;
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
    if (!cipher) return false;
    records_ = Tls13Records::make(SSL_CIPHER_get_protocol_id(cipher), {h->client, h->client_len},
                                  {h->server, h->server_len}, h->server_records);
    if (!records_) return false;
    SSL_free(ssl_);
    ssl_ = nullptr;
    ShardCounters::add(owner_.tls_own_records, 1);
    return true;
  }

  void on_poll(std::uint32_t events) override {
    if (state_ == State::closed || failing_) return;
    if (!tls_ready_) {
      handshake();
      return;
    }
    const bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    const bool writable = events & EPOLLOUT;
    if (records_) {
      if (blocked_ && writable) {
        resume_sealed_write();
        if (state_ == State::closed) return;
      }
      if (read_paused_) {
        if (events & (EPOLLHUP | EPOLLERR)) on_read_end();
        return;
      }
      if (readable) read_records();
      return;
    }
    if (blocked_ && !write_wants_read_ && writable) {
      resume_write();
      if (state_ == State::closed) return;
    }
    if (read_paused_) {
      // Not reading: only a hang-up or an error gets here, and then nobody is left to write to.
      if (events & (EPOLLHUP | EPOLLERR)) on_read_end();
      return;
    }
    if (readable || (writable && read_wants_write_)) {
      on_readable();
      if (state_ == State::closed) return;
    }
    // After the read: what SSL_write waited for (a renegotiation's records) has been taken in.
    if (blocked_ && write_wants_read_ && readable) resume_write();
  }

  void handshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      tls_ready_ = true;
      handshake_wants_write_ = false;
      if (!hand_over_records() && ssl_) {
        SSL_set_msg_callback(ssl_, nullptr);
        SSL_set_app_data(ssl_, nullptr);
      }
      update_interest();
      if (state_ != State::closed) on_readable();  // the HTTP request may have come with the Finished
      return;
    }
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ: handshake_wants_write_ = false; break;
      case SSL_ERROR_WANT_WRITE: handshake_wants_write_ = true; break;
      default:  // not TLS, a certificate the client refused, a reset
        ERR_clear_error();
        ShardCounters::add(owner_.rejected, 1);
        finish();
        return;
    }
    update_interest();
  }

  void on_readable() {
    if (records_) {
      read_records();
      return;
    }
    if (read_wants_write_) {  // it could write: stop watching for output, or epoll spins
      read_wants_write_ = false;
      update_interest();
    }
    auto buf = owner_.shard.read_buffer();
    // A few buffers per wakeup, then back to the loop so one chatty client cannot starve the rest.
    for (int round = 0; round < 4; ++round) {
      std::size_t got = 0;
      int err = SSL_ERROR_NONE;
      while (got < buf.size()) {  // one SSL_read returns at most one record
        ERR_clear_error();
        const int r = SSL_read(ssl_, buf.data() + got, static_cast<int>(buf.size() - got));
        if (r <= 0) {
          err = SSL_get_error(ssl_, r);
          break;
        }
        got += static_cast<std::size_t>(r);
      }
      if (got > 0 && !on_bytes(buf.first(got))) return;
      if (state_ == State::closed || read_paused_) return;
      if (err == SSL_ERROR_NONE) continue;  // the buffer filled up: more may be waiting
      if (err == SSL_ERROR_WANT_READ) return;
      if (err == SSL_ERROR_WANT_WRITE) {  // a key update or renegotiation must answer first
        read_wants_write_ = true;
        update_interest();
        return;
      }
      ERR_clear_error();
      on_read_end();  // close_notify, EOF, reset or a TLS error
      return;
    }
    // Out of rounds. What OpenSSL already holds decrypted does not wake epoll: come back for it.
    read_pending_later();
  }

  /// Reads what OpenSSL holds decrypted on the next loop turn (such records do not wake epoll).
  void read_pending_later() {
    if (SSL_pending(ssl_) == 0 || read_posted_) return;
    read_posted_ = true;
    asio::post(owner_.shard.context(), [self = shared_from_this(), this] {
      read_posted_ = false;
      if (state_ != State::closed && !read_paused_) on_readable();
    });
  }

  /// Offers the blocked record's bytes again; then, once it is out, the rest of the queue.
  void resume_write() {
    while (blocked_done_ < blocked_size_) {
      ERR_clear_error();
      const int r = SSL_write(ssl_, blocked_.get() + blocked_done_, static_cast<int>(blocked_size_ - blocked_done_));
      if (r <= 0) {
        const int err = SSL_get_error(ssl_, r);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
          write_wants_read_ = err == SSL_ERROR_WANT_READ;
          update_interest();
        } else {
          fail_later();
        }
        return;
      }
      blocked_done_ += static_cast<std::uint32_t>(r);
    }
    count_write(blocked_published_);
    blocked_.reset();
    blocked_size_ = blocked_done_ = 0;
    waiting_writable_ = false;
    write_wants_read_ = false;
    update_interest();
    on_written(0);  // its bytes left the queue when the write blocked
    if (state_ != State::closed) flush();
  }

  // ---- our own TLS 1.3 records (after hand_over_records)

  /// Seals what the queue holds into up to k_records_per_send records per send(); a send the
  /// socket takes only part of keeps the rest (already protected, so it must go out as it is).
  void flush_records() {
    pull_due();
    std::byte* out = sealed_scratch();
    iovec iov[k_max_iov];
    iovec pieces[k_max_iov];
    while (!queue_.empty() || records_->key_update_due()) {
      std::size_t at = 0;
      if (records_->key_update_due()) {
        const std::size_t k = records_->seal_key_update(out);
        if (k == 0) return fail_later();
        at = k;
      }
      const std::int64_t first_published = queue_.empty() ? 0 : head_published_ns();
      const std::size_t count = queue_.empty() ? 0 : gather(queue_, iov, k_max_iov, k_send_plain);
      std::size_t total = 0;
      for (std::size_t i = 0; i < count; ++i) total += iov[i].iov_len;
      total = std::min(total, k_send_plain);  // gather's last frame may reach past it
      // Cut the gathered frames into records of at most 2^14 bytes (a frame may straddle two).
      std::size_t i = 0, offset = 0, taken = 0;
      while (taken < total) {
        const std::size_t want = std::min(Tls13Records::k_max_plain, total - taken);
        std::size_t np = 0, got = 0;
        while (got < want) {
          const std::size_t k = std::min(iov[i].iov_len - offset, want - got);
          pieces[np++] = {static_cast<std::byte*>(iov[i].iov_base) + offset, k};
          got += k;
          offset += k;
          if (offset == iov[i].iov_len) ++i, offset = 0;
        }
        const std::size_t k = records_->seal({pieces, np}, want, out + at);
        if (k == 0) return fail_later();
        at += k;
        taken += want;
      }
      ssize_t n;
      do n = ::send(fd_, out, at, MSG_NOSIGNAL | MSG_DONTWAIT);
      while (n < 0 && errno == EINTR);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return fail_later();
      const std::size_t sent = n < 0 ? 0 : static_cast<std::size_t>(n);
      if (sent == at) {
        count_write(first_published);
        on_written(taken);
        if (state_ == State::closed) return;
        continue;
      }
      blocked_ = std::make_unique_for_overwrite<std::byte[]>(at - sent);
      std::memcpy(blocked_.get(), out + sent, at - sent);
      blocked_size_ = static_cast<std::uint32_t>(at - sent);
      blocked_done_ = 0;
      blocked_published_ = first_published;
      take_written(taken);
      wait_to_write(false);
      return;
    }
  }

  /// Sends the rest of the records a full socket held back; then, once they are out, the queue.
  void resume_sealed_write() {
    while (blocked_done_ < blocked_size_) {
      const ssize_t n =
          ::send(fd_, blocked_.get() + blocked_done_, blocked_size_ - blocked_done_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) fail_later();
        return;
      }
      blocked_done_ += static_cast<std::uint32_t>(n);
    }
    count_write(blocked_published_);
    blocked_.reset();
    blocked_size_ = blocked_done_ = 0;
    waiting_writable_ = false;
    update_interest();
    on_written(0);  // its bytes left the queue when the write blocked
    if (state_ != State::closed) flush();
  }

  void read_records() {
    auto buf = owner_.shard.read_buffer();
    for (int round = 0; round < 4; ++round) {  // then back to the loop, as on_readable
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        on_read_end();  // EOF or error
        return;
      }
      const auto end = records_->open(buf.first(static_cast<std::size_t>(n)), [this](std::span<const std::byte> plain) {
        return on_bytes(plain) && state_ != State::closed;
      });
      if (end == Tls13Records::End::stopped || state_ == State::closed) return;
      if (end == Tls13Records::End::peer_closed) {
        on_read_end();
        return;
      }
      if (end == Tls13Records::End::fatal) {
        send_alert(records_->fatal_alert());
        ShardCounters::add(owner_.tls_record_errors, 1);
        fail_later();
        return;
      }
      if (records_->key_update_due()) schedule_flush();  // the peer asked for our KeyUpdate
      if (read_paused_ || static_cast<std::size_t>(n) < buf.size()) return;
    }
  }

  /// A fatal alert before the connection ends, when nothing half-sent is in the way (best effort).
  void send_alert(Tls13Records::Alert what) {
    if (blocked_) return;
    std::byte out[Tls13Records::k_overhead + 2];
    if (const std::size_t k = records_->seal_alert(what, out)) ::send(fd_, out, k, MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  void wait_to_write(bool wants_read) {
    write_wants_read_ = wants_read;
    wait_writable();
  }

  /// Level-triggered input is watched unless reading is paused (a blocked write that waits for the
  /// peer's records still reads); output only while some operation waits for it.
  void update_interest(bool read_changed = false) {
    const bool want = handshake_wants_write_ || read_wants_write_ || (blocked_ && !write_wants_read_);
    if ((want == polled_write_ && !read_changed) || fd_ < 0) return;
    polled_write_ = want;
    const bool read = !read_paused_ || write_wants_read_ || !tls_ready_;
    if (owner_.shard.poller().modify(fd_, this, want, read)) fail_later();
  }

  static constexpr std::size_t k_max_iov = 256;

  SSL* ssl_ = nullptr;
  std::unique_ptr<HandshakeSecrets> secrets_;  // during the handshake, when the records will be ours
  std::unique_ptr<Tls13Records> records_;      // after it: our record layer (no SSL object)
  std::unique_ptr<std::byte[]> blocked_;       // a record not sent yet (plaintext for OpenSSL, sealed for ours)
  std::uint32_t blocked_size_ = 0;
  std::uint32_t blocked_done_ = 0;
  std::int64_t blocked_published_ = 0;
  bool tls_ready_ = false;              // handshake done
  bool handshake_wants_write_ = false;  // the server's flight did not fit the socket
  bool read_wants_write_ = false;       // SSL_read must send before it can read on
  bool write_wants_read_ = false;       // the blocked SSL_write waits for the peer (renegotiation)
  bool polled_write_ = false;           // EPOLLOUT is in the Poller's mask
  bool read_posted_ = false;
};

}  // namespace

std::shared_ptr<Session> make_tls_session(ServerShard& owner, ShardSocket socket) {
  const auto& tls = owner.options().tls;
  return TlsSession::open(owner, std::move(socket), owner.tls_context->native_handle(), tls && tls->own_records);
}

void prepare_tls_context(asio::ssl::context& ctx) {
  // Called during handshakes only; a session that keeps OpenSSL ignores it.
  SSL_CTX_set_keylog_callback(ctx.native_handle(), &TlsSession::on_key_log);
}

}  // namespace detail
}  // namespace fanout

#else

namespace fanout::detail {
std::shared_ptr<Session> make_tls_session(ServerShard&, ShardSocket) { return nullptr; }
void prepare_tls_context(asio::ssl::context&) {}
}  // namespace fanout::detail

#endif

// A real OpenSSL client against a wss Server: with fanout's own TLS 1.3 records (Tls::own_records)
// for each of the three suites, messages arrive byte-exact before and after a KeyUpdate the client
// asks for, and the server answers it exactly once; the same with OpenSSL's records throughout,
// and over TLS 1.2 (which always stays with OpenSSL).
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>

#if FANOUT_WITH_TLS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_test_files.hpp"
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using fanout_test::make_certificate;
using fanout_test::TempDir;

template <class F>
bool wait_for(F f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

// Handshake messages the client received, by type (the msg callback sees them decrypted).
struct Seen {
  int key_updates = 0;  // KeyUpdate (24)
};

void on_message(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*, void* arg) {
  if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1) return;
  if (static_cast<const unsigned char*>(buf)[0] == SSL3_MT_KEY_UPDATE) ++static_cast<Seen*>(arg)->key_updates;
}

// A blocking OpenSSL client on one TCP connection (reads time out after 5 s).
class Client {
 public:
  Client(std::uint16_t port, const char* suite, bool tls12) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    REQUIRE(ctx_);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);  // self-signed: the records are what is tested
    if (tls12) {
      SSL_CTX_set_max_proto_version(ctx_.get(), TLS1_2_VERSION);
    } else {
      SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_3_VERSION);
    }
    ssl_.reset(SSL_new(ctx_.get()));
    REQUIRE(ssl_);
    if (suite) REQUIRE(SSL_set_ciphersuites(ssl_.get(), suite) == 1);
    SSL_set_msg_callback(ssl_.get(), on_message);
    SSL_set_msg_callback_arg(ssl_.get(), &seen);
    REQUIRE(SSL_set_fd(ssl_.get(), fd_) == 1);
    REQUIRE(SSL_connect(ssl_.get()) == 1);
  }
  ~Client() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  SSL* ssl() { return ssl_.get(); }

  void write(const std::string& s) {
    REQUIRE(SSL_write(ssl_.get(), s.data(), static_cast<int>(s.size())) == static_cast<int>(s.size()));
  }

  // Exactly n bytes of application data (what an earlier read took beyond its need first).
  std::string read(std::size_t n) {
    while (buffered_.size() < n) {
      char buf[16384];
      const int k = SSL_read(ssl_.get(), buf, sizeof buf);
      REQUIRE_MESSAGE(k > 0, "SSL_read: " << SSL_get_error(ssl_.get(), k));
      buffered_.append(buf, static_cast<std::size_t>(k));
    }
    std::string out = buffered_.substr(0, n);
    buffered_.erase(0, n);
    return out;
  }

  std::string read_http_head() {
    std::string head;
    while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
      head += read(1);
      REQUIRE(head.size() < 4096);
    }
    return head;
  }

  // One unmasked frame from the server: its first byte (FIN and opcode) and its payload.
  std::pair<int, std::string> read_frame() {
    const std::string h = read(2);
    std::uint64_t len = static_cast<unsigned char>(h[1]) & 0x7f;
    REQUIRE((static_cast<unsigned char>(h[1]) & 0x80) == 0);  // a server never masks
    if (len == 126 || len == 127) {
      const std::string ext = read(len == 126 ? 2 : 8);
      len = 0;
      for (char c : ext) len = len << 8 | static_cast<unsigned char>(c);
    }
    return {static_cast<unsigned char>(h[0]), read(static_cast<std::size_t>(len))};
  }

  // A masked frame, as a client must send (RFC 6455 §5.3).
  void write_frame(int first_byte, const std::string& payload) {
    REQUIRE(payload.size() < 126);
    const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::string f;
    f += static_cast<char>(first_byte);
    f += static_cast<char>(0x80 | payload.size());
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
    write(f);
  }

  Seen seen;

 private:
  int fd_ = -1;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, SSL_CTX_free};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_{nullptr, SSL_free};
  std::string buffered_;
};

std::string message(std::size_t n, char seed) {
  std::string s(n, ' ');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (seed + i * 7 + i / 251) % 26);
  return s;
}

struct Case {
  const char* suite;                          // TLS 1.3 suite the client offers alone (nullptr: OpenSSL's default)
  bool own_records;                           // Server::Tls::own_records
  bool tls12;                                 // the client speaks TLS 1.2 at most
  int key_update = SSL_KEY_UPDATE_REQUESTED;  // what the client sends in TLS 1.3 (-1: none)
};

// Upgrade to /ws?subscribe=t, three messages (one over 2^14 bytes, so it spans records), a
// KeyUpdate the client asks for (TLS 1.3), a ping answered, two more messages: all byte-exact.
void run(const Case& c) {
  TempDir dir("fanout-tls13-client-");
  const auto cert = dir.file("cert.pem"), key = dir.file("key.pem");
  make_certificate(1, cert, key);
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  hub.declare("t");
  fanout::Server::Tls tls{cert, key};
  tls.own_records = c.own_records;
  fanout::Server server(rt, hub, {.host = "127.0.0.1", .port = 0, .tls = tls});
  rt.start();
  {
    Client client(server.port(), c.suite, c.tls12);
    if (c.suite) CHECK(std::string(SSL_CIPHER_get_name(SSL_get_current_cipher(client.ssl()))) == c.suite);
    CHECK(SSL_version(client.ssl()) == (c.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION));
    client.write(
        "GET /ws?subscribe=t HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    const std::string head = client.read_http_head();
    REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
    REQUIRE(wait_for([&] { return server.stats().subscriptions == 1; }));
    const auto [ack_op, ack] = client.read_frame();  // the subscription's acknowledgement
    CHECK(ack_op == 0x81);
    CHECK(ack.rfind(R"({"event":"subscribe","arg":"t")", 0) == 0);

    const std::vector<std::string> before = {message(5, 1), message(300, 2), message(40000, 3)};
    for (const auto& m : before) hub.publish("t", m);
    for (const auto& m : before) {
      const auto [op, payload] = client.read_frame();
      CHECK(op == 0x81);  // FIN, text
      CHECK_MESSAGE(payload == m, "a frame of " << payload.size() << " bytes, not the " << m.size() << " published");
    }

    if (!c.tls12 && c.key_update >= 0) REQUIRE(SSL_key_update(client.ssl(), c.key_update) == 1);
    client.write_frame(0x89, "after-update");  // ping: the KeyUpdate goes out before it
    const auto [pong_op, pong] = client.read_frame();
    CHECK(pong_op == 0x8a);
    CHECK(pong == "after-update");
    const std::vector<std::string> after = {message(17000, 4), message(1, 5)};
    for (const auto& m : after) hub.publish("t", m);
    for (const auto& m : after) {
      const auto [op, payload] = client.read_frame();
      CHECK(op == 0x81);
      CHECK_MESSAGE(payload == m, "a frame of " << payload.size() << " bytes, not the " << m.size() << " published");
    }
    // The server answered the request once (RFC 8446 §4.6.3), and its later records opened under
    // its next secret (the frames above); a KeyUpdate that asks nothing gets no answer.
    CHECK(client.seen.key_updates == (!c.tls12 && c.key_update == SSL_KEY_UPDATE_REQUESTED ? 1 : 0));
  }
  const auto stats = server.stats();
  CHECK(stats.tls_own_records == (c.own_records && !c.tls12 ? 1u : 0u));
  CHECK(stats.tls_record_errors == 0);
  rt.stop();
}

}  // namespace

TEST_CASE("wss with fanout's own TLS 1.3 records: a real OpenSSL client, every suite, a KeyUpdate") {
  for (const char* suite : {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    CAPTURE(suite);
    run({.suite = suite, .own_records = true, .tls12 = false});
  }
}

TEST_CASE("wss with fanout's own TLS 1.3 records: a KeyUpdate that asks for none is not answered") {
  run({.suite = "TLS_AES_128_GCM_SHA256",
       .own_records = true,
       .tls12 = false,
       .key_update = SSL_KEY_UPDATE_NOT_REQUESTED});
}

TEST_CASE("wss with OpenSSL's records throughout (own_records = false): the same client, the same result") {
  for (const char* suite : {"TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"}) {
    CAPTURE(suite);
    run({.suite = suite, .own_records = false, .tls12 = false});
  }
}

TEST_CASE("wss over TLS 1.2 stays with OpenSSL even with own_records") {
  run({.suite = nullptr, .own_records = true, .tls12 = true});
}
#endif

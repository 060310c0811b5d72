// Server::reload_tls: a renewed certificate for new handshakes, the old one kept on a bad file.
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>

#if FANOUT_WITH_TLS
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_test_files.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include <unistd.h>

namespace {

using fanout_test::make_certificate;
using fanout_test::TempDir;

// The serial of the certificate the server on `port` presents to a new handshake.
long presented_serial(std::uint16_t port) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);  // self-signed: the serial is what is checked
  asio::ssl::stream<asio::ip::tcp::socket> s(io, ctx);
  s.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  s.handshake(asio::ssl::stream_base::client);
  std::unique_ptr<X509, decltype(&X509_free)> peer(SSL_get1_peer_certificate(s.native_handle()), X509_free);
  REQUIRE(peer);
  const long serial = ASN1_INTEGER_get(X509_get_serialNumber(peer.get()));
  asio::error_code ec;
  s.lowest_layer().close(ec);
  return serial;
}

}  // namespace

TEST_CASE("reload_tls: new handshakes get the renewed certificate; a bad file keeps the one in use") {
  TempDir dir("fanout-tls-reload-");
  const auto cert = dir.file("cert.pem"), key = dir.file("key.pem");
  make_certificate(1, cert, key);
  fanout::Runtime rt({.shards = 2});
  fanout::Hub hub(rt);
  fanout::Server server(rt, hub, {.host = "127.0.0.1", .port = 0, .tls = fanout::Server::Tls{cert, key}});
  rt.start();
  CHECK(presented_serial(server.port()) == 1);

  make_certificate(2, cert, key);
  server.reload_tls();
  // Each shard switches on its own thread: every new handshake, on any shard, sees it soon.
  long seen = 1;
  for (int i = 0; i < 200 && seen != 2; ++i) seen = presented_serial(server.port());
  CHECK(seen == 2);
  for (int i = 0; i < 8; ++i) CHECK(presented_serial(server.port()) == 2);

  std::ofstream(cert) << "not a certificate\n";
  CHECK_THROWS_AS(server.reload_tls(), std::system_error);
  make_certificate(3, dir.file("other.pem"), dir.file("other.key"));
  std::filesystem::copy_file(dir.file("other.key"), key, std::filesystem::copy_options::overwrite_existing);
  make_certificate(4, cert, dir.file("unused.key"));  // a certificate whose key is not `key`
  CHECK_THROWS_AS(server.reload_tls(), std::system_error);
  for (int i = 0; i < 8; ++i) CHECK(presented_serial(server.port()) == 2);
  rt.stop();
}

TEST_CASE("reload_tls on a server without TLS is a logic error") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Server server(rt, hub, {.host = "127.0.0.1", .port = 0});
  CHECK_THROWS_AS(server.reload_tls(), std::logic_error);
}
#endif

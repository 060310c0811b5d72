// Server::Options::auth at the library level: the upgrade's token becomes Session::identity() and
// user_id() (seen in on_open), a refused token is a 401, a foreign Origin a 403, and an application
// that authenticates by itself sets the identity in on_open. (The relay's test_auth.py covers the rest.)
#include <doctest/doctest.h>

#include <fanout/detail/jwt.hpp>
#include <fanout/fanout.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace {

const std::string k_secret(32, 'q');

std::string hs256_token(const std::string& claims) {
  using fanout::detail::base64url_encode;
  const auto input = base64url_encode(R"({"alg":"HS256","kid":"k"})") + "." + base64url_encode(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), k_secret.data(), static_cast<int>(k_secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

/// The status line's code of the answer to an upgrade request with `headers`.
int upgrade_status(std::uint16_t port, const std::string& headers) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const auto req = fmt::format(
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{}\r\n",
      headers);
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  char buf[2048];
  const auto n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  REQUIRE(n > 12);
  return std::stoi(std::string(buf + 9, 3));
}

}  // namespace

TEST_CASE("a verified token becomes the session's identity; bad tokens get 401, foreign origins 403") {
  auto verifier = std::make_shared<fanout::TokenVerifier>(fanout::TokenVerifier::Options{});
  verifier->set_keys({{.kid = "k", .alg = "HS256", .secret = k_secret}});
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Server::Options o;
  o.port = 0;
  o.auth.verifier = verifier;
  o.auth.allowed_origins = {"https://app.example"};
  std::mutex m;
  std::string seen_user;
  std::atomic<int> opened{0};
  fanout::Server server(rt, hub, o, {.on_open = [&](fanout::Session& s) {
                          std::lock_guard lock(m);
                          seen_user = std::string(s.user_id());
                          CHECK(s.identity() != nullptr);
                          opened.fetch_add(1);
                        }});
  rt.start();
  const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch() + std::chrono::minutes(5))
                       .count();
  const auto good = hs256_token(fmt::format(R"({{"sub":"alice","exp":{}}})", exp));
  CHECK(upgrade_status(server.port(), "Authorization: Bearer " + good + "\r\n") == 101);
  CHECK(upgrade_status(server.port(), "Sec-WebSocket-Protocol: fanout.v1, bearer." + good + "\r\n") == 101);
  CHECK(upgrade_status(server.port(), "Authorization: Bearer " + good + "x\r\n") == 401);
  CHECK(upgrade_status(server.port(), "Authorization: Bearer " + hs256_token(R"({"sub":"a","exp":1})") + "\r\n") ==
        401);
  CHECK(upgrade_status(server.port(), "Origin: https://evil.example\r\nAuthorization: Bearer " + good + "\r\n") == 403);
  CHECK(upgrade_status(server.port(), "Origin: https://APP.example\r\nAuthorization: Bearer " + good + "\r\n") == 101);
  for (int i = 0; i < 500 && opened.load() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(opened.load() == 3);
  std::lock_guard lock(m);
  CHECK(seen_user == "alice");
}

TEST_CASE("an application that authenticates by itself sets the identity in on_open") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Server::Options o;
  o.port = 0;
  std::atomic<bool> checked{false};
  fanout::Server server(rt, hub, o, {.on_open = [&](fanout::Session& s) {
                          CHECK(s.identity() == nullptr);
                          CHECK(s.user_id().empty());
                          fanout::Identity id;
                          id.user = "from-cookie";
                          s.set_identity(std::move(id));
                          CHECK(s.user_id() == "from-cookie");
                          checked = true;
                        }});
  rt.start();
  CHECK(upgrade_status(server.port(), "") == 101);
  for (int i = 0; i < 500 && !checked; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(checked.load());
}

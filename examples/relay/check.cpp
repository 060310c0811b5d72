#include "check.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include <sys/socket.h>
#include <unistd.h>

#if FANOUT_WITH_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

namespace relay {
namespace {

// "" when `path` can be read, else why not.
std::string unreadable(const std::string& path) {
  if (::access(path.c_str(), R_OK) == 0 && !std::filesystem::is_directory(path)) return {};
  if (std::filesystem::is_directory(path)) return "is a directory";
  return std::strerror(errno);
}

// Binds and listens as fanout::Server does (SO_REUSEADDR and SO_REUSEPORT), so what passes here
// binds at start: another relay of the same user on the port (SO_REUSEPORT) is allowed, a port held
// by anything else is not. The acceptor stays open in `held` until every address was tried.
std::string try_bind(asio::io_context& io, const Listen& l, std::vector<asio::ip::tcp::acceptor>& held) {
  asio::error_code ec;
  const auto address = asio::ip::make_address(l.host, ec);
  if (ec) return fmt::format("'{}' is not an IP address", l.host);
  asio::ip::tcp::acceptor a(io);
  const asio::ip::tcp::endpoint endpoint(address, l.port);
  if (a.open(endpoint.protocol(), ec)) return ec.message();
  a.set_option(asio::socket_base::reuse_address(true), ec);
  int one = 1;
  ::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (a.bind(endpoint, ec) || a.listen(asio::socket_base::max_listen_connections, ec)) return ec.message();
  held.push_back(std::move(a));
  return {};
}

void check_listeners(const Config& c, std::vector<std::string>& out) {
  asio::io_context io;
  std::vector<asio::ip::tcp::acceptor> held;
  std::vector<std::pair<std::string, const Listen*>> all;  // key, address
  if (c.role != Role::ingest)
    for (const auto& l : c.listen) all.emplace_back(l.tls ? "server.listen_tls" : "server.listen", &l);
  if (c.admin.listen) all.emplace_back("admin.listen", &*c.admin.listen);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& [key, l] = all[i];
    // Two of our own listeners on one port would share it silently (SO_REUSEPORT): refuse.
    bool twice = false;
    for (std::size_t j = 0; j < i && l->port != 0; ++j)
      if (all[j].second->port == l->port && all[j].second->host == l->host) {
        out.push_back(fmt::format("{} {}:{}: also {}", key, l->host, l->port, all[j].first));
        twice = true;
      }
    if (twice) continue;
    if (auto why = try_bind(io, *l, held); !why.empty())
      out.push_back(fmt::format("{} {}:{}: cannot listen: {}", key, l->host, l->port, why));
  }
}

#if FANOUT_WITH_TLS
std::string openssl_reason() {
  const unsigned long e = ERR_peek_error();  // the first: the cause, not the wrappers
  const char* reason = e ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return reason ? reason : "unknown OpenSSL error";
}

using SslCtx = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

void check_tls(const Config& c, std::vector<std::string>& out) {
  bool files_ok = true;
  for (const auto& [key, path] : {std::pair{"server.tls_cert", &c.tls_cert}, std::pair{"server.tls_key", &c.tls_key}})
    if (auto why = unreadable(*path); !why.empty()) {
      out.push_back(fmt::format("{} {}: cannot read: {}", key, *path, why));
      files_ok = false;
    }
  if (!files_ok) return;
  SslCtx with_cert(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  SslCtx key_alone(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!with_cert || !key_alone) return out.push_back("TLS: cannot make an OpenSSL context: " + openssl_reason());
  const bool cert_ok = SSL_CTX_use_certificate_chain_file(with_cert.get(), c.tls_cert.c_str()) == 1;
  if (!cert_ok)
    out.push_back(fmt::format("server.tls_cert {}: not a PEM certificate chain ({})", c.tls_cert, openssl_reason()));
  // Alone first, so a key that does not load is told apart from one that does not match.
  const bool key_ok = SSL_CTX_use_PrivateKey_file(key_alone.get(), c.tls_key.c_str(), SSL_FILETYPE_PEM) == 1;
  if (!key_ok) out.push_back(fmt::format("server.tls_key {}: not a PEM private key ({})", c.tls_key, openssl_reason()));
  if (cert_ok && key_ok &&
      (SSL_CTX_use_PrivateKey_file(with_cert.get(), c.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_check_private_key(with_cert.get()) != 1)) {
    ERR_clear_error();
    out.push_back(
        fmt::format("server.tls_key {} does not match the certificate in server.tls_cert {}", c.tls_key, c.tls_cert));
  }
}
#endif

void check_upstreams(const Config& c, std::vector<std::string>& out) {
  for (const auto& u : c.upstreams) {
    for (const auto& url : u.options.urls) try {
        fanout::parse_ws_url(url);  // scheme ws or wss, host, port; its message redacts credentials
      } catch (const std::invalid_argument& e) {
        out.push_back(fmt::format("upstream '{}' urls: {}", u.name, e.what()));
      }
    if (!u.options.ca_file.empty())
      if (auto why = unreadable(u.options.ca_file); !why.empty())
        out.push_back(fmt::format("upstream '{}' ca_file {}: cannot read: {}", u.name, u.options.ca_file, why));
  }
}

void check_redis(const Config& c, std::vector<std::string>& out) {
  if (!c.redis.enabled) return;
  const auto& h = c.redis.host;
  const bool name_ok = !h.empty() && h.size() <= 253 && h.find_first_of(" \t/@?#") == std::string::npos;
  if (!name_ok) out.push_back(fmt::format("redis.host '{}': not a host name or address", h));
}

// A journal is opened (created) on its first write: its directory must let us.
void check_sinks(const Config& c, std::vector<std::string>& out) {
  for (const auto& s : c.sinks) {
    if (s.type != "journal") continue;
    const std::filesystem::path path(s.journal.path);
    const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    const auto key = fmt::format("sink.{}.path {}", s.options.name, s.journal.path);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      out.push_back(fmt::format("{}: is a directory", key));
    else if (std::filesystem::exists(path, ec) && ::access(path.c_str(), W_OK) != 0)
      out.push_back(fmt::format("{}: not writable: {}", key, std::strerror(errno)));
    else if (!std::filesystem::is_directory(dir, ec))
      out.push_back(fmt::format("{}: no directory {}", key, dir.string()));
    else if (::access(dir.c_str(), W_OK | X_OK) != 0)
      out.push_back(fmt::format("{}: directory {} not writable: {}", key, dir.string(), std::strerror(errno)));
  }
}

}  // namespace

std::vector<std::string> find_problems(const Config& c) {
  std::vector<std::string> out;
#if FANOUT_WITH_TLS
  const bool tls =
      c.role != Role::ingest && std::any_of(c.listen.begin(), c.listen.end(), [](const Listen& l) { return l.tls; });
  if (tls) check_tls(c, out);
#endif
  check_listeners(c, out);
  check_upstreams(c, out);
  check_redis(c, out);
  check_sinks(c, out);
  return out;
}

std::string check_summary(const Config& c) {
  return fmt::format("configuration ok: {} listener(s){}, {} upstream(s){}{}, {} sink(s){}", c.listen.size(),
                     c.admin.listen ? fmt::format(", admin {}:{}", c.admin.listen->host, c.admin.listen->port) : "",
                     c.upstreams.size(), c.simulator.enabled ? ", bundled simulator" : "",
                     c.processor.enabled ? fmt::format(", processor ({})", c.processor.stage) : "", c.sinks.size(),
                     c.redis.enabled
                         ? fmt::format(", role {} over redis {}:{}", to_string(c.role), c.redis.host, c.redis.port)
                         : std::string());
}

}  // namespace relay

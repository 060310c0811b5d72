// fanout/detail/connection_limits.hpp — who a connection comes from, and how many it may have:
// CIDR sets (trusted proxies, exempt networks), the client address a trusted proxy reports
// (X-Forwarded-For, PROXY protocol v1 and v2), and the per-IP table every shard of a Server shares.
//
// The table is touched twice per connection (admitted, ended) and never on the delivery path; it is
// split into stripes with a mutex each, so shards accepting at once rarely meet.
//
// Thread safety: CidrSet and the parsers are pure; IpLimiter may be called from any thread.
#pragma once

#include <array>
#include <chrono>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>

#include "fanout/detail/token_bucket.hpp"

namespace fanout::detail {

/// An address as 16 bytes: IPv4 as its IPv4-mapped IPv6 form, so both families share one table.
using IpKey = std::array<std::uint8_t, 16>;
IpKey ip_key(const asio::ip::address& a) noexcept;

/// A network: "10.0.0.0/8", "2001:db8::/32", or a single address ("192.0.2.1").
struct Cidr {
  IpKey network{};
  std::uint8_t prefix = 0;  // bits, over the 16-byte form
  bool contains(const IpKey& ip) const noexcept;
};
/// Throws std::invalid_argument on a malformed network.
Cidr parse_cidr(std::string_view text);

class CidrSet {
 public:
  CidrSet() = default;
  explicit CidrSet(const std::vector<std::string>& networks);  // throws std::invalid_argument
  bool contains(const asio::ip::address& a) const noexcept;
  bool empty() const noexcept { return nets_.empty(); }

 private:
  std::vector<Cidr> nets_;
};

/// The client a chain of proxies reports in X-Forwarded-For ("client, proxy1, proxy2"): the rightmost
/// address that is not a trusted proxy (everything left of it could be forged by the client), or the
/// leftmost when all are trusted. nullopt when the header holds no valid address there.
std::optional<asio::ip::address> client_from_forwarded_for(std::string_view header, const CidrSet& trusted);

/// A PROXY protocol header (HAProxy's, v1 text or v2 binary) at the start of a connection.
struct ProxyHeader {
  enum class Status { need_more, bad, ok };
  Status status = Status::need_more;
  std::size_t consumed = 0;                         // bytes of the header, when ok
  std::optional<asio::ip::tcp::endpoint> source{};  // the client; none for LOCAL/UNKNOWN (health checks)
};
/// Reads a header from the first bytes of a connection; need_more until it is complete.
ProxyHeader parse_proxy_header(std::span<const std::byte> data) noexcept;
/// The longest header accepted (v1's limit is 107; v2 is allowed its TLVs up to this).
inline constexpr std::size_t k_max_proxy_header = 536;

/// Why a connection limit refused a connection (Session::refusal_); it gets 503 + Retry-After.
enum class Refusal : std::uint8_t { none, total, per_ip, rate };

/// Connections and handshake rate per client IP, shared by all shards of one Server.
class IpLimiter {
 public:
  struct Settings {
    std::size_t max_connections = 0;   // per IP; 0: no limit
    double handshakes_per_second = 0;  // per IP; 0: no limit
    double handshake_burst = 0;
  };
  enum class Verdict { ok, too_many_connections, too_many_handshakes };

  explicit IpLimiter(Settings s) noexcept { set(s); }

  /// New limits (Server::reload), from any thread: counted connections and buckets stay; each
  /// check reads the limits in force when it runs.
  void set(Settings s) noexcept;
  Settings settings() const noexcept;

  /// Counts a connection of `ip` when both limits allow it (then release() must follow).
  Verdict acquire(const IpKey& ip, std::uint32_t now);  // may throw std::bad_alloc
  void release(const IpKey& ip, std::uint32_t now) noexcept;
  /// Forgets one stripe's idle entries (no connection, bucket full); call regularly (every tick).
  void sweep(std::uint32_t now) noexcept;
  /// Open connections of `ip` (tests and diagnostics).
  std::size_t connections(const IpKey& ip) noexcept;
  std::size_t tracked() noexcept;  // entries in the table

 private:
  struct Entry {
    std::uint32_t connections = 0;
    TokenBucket handshakes;
  };
  struct Hash {
    std::size_t operator()(const IpKey& k) const noexcept;
  };
  struct Stripe {
    std::mutex mutex;
    std::unordered_map<IpKey, Entry, Hash> map;
  };
  static constexpr std::size_t k_stripes = 64;
  Stripe& stripe_of(const IpKey& ip) noexcept { return stripes_[Hash{}(ip) % k_stripes]; }

  std::atomic<std::size_t> max_connections_{0};
  std::atomic<double> handshakes_per_second_{0};
  std::atomic<double> handshake_burst_{0};
  std::array<Stripe, k_stripes> stripes_;
  std::atomic<std::size_t> next_sweep_{0};
};

}  // namespace fanout::detail

namespace fanout::detail {

/// Who a Server trusts and exempts (Server::Options::trusted_proxies, limit_exempt, exempt_loopback).
struct AdmissionNetworks {
  CidrSet trusted_proxies;
  CidrSet exempt;
};

/// A Server's connection limits as its shards and sessions use them (Server::Options, resolved). The
/// limits are atomics that Server::reload sets from the controlling thread; the networks (trusted
/// proxies, exempt) are in each shard's snapshot (AdmissionNetworks), swapped on the shard's thread.
struct Admission {
  explicit Admission(IpLimiter::Settings per_ip_settings) : per_ip(per_ip_settings) {}
  std::atomic<std::size_t> max_connections{0};  // resolved: never 0
  bool proxy_protocol = false;                  // fixed at start (the listener's framing)
  std::atomic<std::int64_t> retry_after_ms{0};
  std::atomic<double> retry_jitter{0.5};
  IpLimiter per_ip;
  std::atomic<std::size_t> connections{0};  // over all shards, pending handshakes included

  /// Seconds for a 503's Retry-After: uniform in [retry_after x (1 - retry_jitter), retry_after],
  /// at least 1, so clients refused together do not come back together (retry_advice.hpp).
  std::uint32_t jittered_retry_after() const noexcept;
};

}  // namespace fanout::detail

#include "fanout/detail/connection_limits.hpp"
#include "fanout/detail/retry_advice.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace fanout::detail {

IpKey ip_key(const asio::ip::address& a) noexcept {
  if (a.is_v6()) {
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) return ip_key(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
    return v6.to_bytes();
  }
  IpKey k{};
  k[10] = k[11] = 0xff;
  const auto b = a.to_v4().to_bytes();
  std::copy(b.begin(), b.end(), k.begin() + 12);
  return k;
}

bool Cidr::contains(const IpKey& ip) const noexcept {
  const std::size_t whole = prefix / 8, bits = prefix % 8;
  if (std::memcmp(ip.data(), network.data(), whole) != 0) return false;
  if (bits == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - bits));
  return (ip[whole] & mask) == (network[whole] & mask);
}

Cidr parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const std::string addr(text.substr(0, slash));
  asio::error_code ec;
  const auto a = asio::ip::make_address(addr, ec);
  if (ec) throw std::invalid_argument("fanout: not an IP network: '" + std::string(text) + "'");
  const unsigned max = a.is_v4() ? 32 : 128;
  unsigned bits = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, e] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (digits.empty() || e != std::errc{} || end != digits.data() + digits.size() || bits > max)
      throw std::invalid_argument("fanout: bad prefix length in '" + std::string(text) + "'");
  }
  Cidr c{.network = ip_key(a), .prefix = static_cast<std::uint8_t>(a.is_v4() ? bits + 96 : bits)};
  // Clear the host bits, so "10.1.2.3/8" means 10.0.0.0/8.
  for (std::size_t i = 0; i < 16; ++i) {
    const std::size_t from = i * 8;
    if (from >= c.prefix)
      c.network[i] = 0;
    else if (c.prefix - from < 8)
      c.network[i] &= static_cast<std::uint8_t>(0xff << (8 - (c.prefix - from)));
  }
  return c;
}

CidrSet::CidrSet(const std::vector<std::string>& networks) {
  for (const auto& n : networks) nets_.push_back(parse_cidr(n));
}

bool CidrSet::contains(const asio::ip::address& a) const noexcept {
  if (nets_.empty()) return false;
  const IpKey k = ip_key(a);
  return std::any_of(nets_.begin(), nets_.end(), [&](const Cidr& c) { return c.contains(k); });
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<asio::ip::address> address_of(std::string_view s) {
  s = trim(s);
  // "[2001:db8::1]:443" and "192.0.2.1:443" appear in the wild; the port is not ours to use.
  if (s.starts_with('[')) {
    const auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    s = s.substr(1, close - 1);
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    s = s.substr(0, s.find(':'));
  }
  asio::error_code ec;
  const auto a = asio::ip::make_address(std::string(s), ec);
  if (ec) return std::nullopt;
  return a;
}
}  // namespace

std::optional<asio::ip::address> client_from_forwarded_for(std::string_view header, const CidrSet& trusted) {
  while (true) {
    const auto comma = header.rfind(',');
    const auto a = address_of(comma == std::string_view::npos ? header : header.substr(comma + 1));
    if (!a) return std::nullopt;  // garbage: no hop vouches for what is left of it
    if (!trusted.contains(*a) || comma == std::string_view::npos) return a;
    header = header.substr(0, comma);
  }
}

// ---------------------------------------------------------------- PROXY protocol

namespace {
constexpr std::uint8_t k_v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

ProxyHeader parse_v1(std::string_view s) noexcept {
  ProxyHeader r;
  const auto end = s.find("\r\n");
  if (end == std::string_view::npos) {
    r.status = s.size() >= 107 ? ProxyHeader::Status::bad : ProxyHeader::Status::need_more;
    return r;
  }
  if (end + 2 > 107) return {.status = ProxyHeader::Status::bad};
  r.consumed = end + 2;
  std::string_view line = s.substr(0, end);
  std::string_view parts[6];
  std::size_t n = 0;
  while (!line.empty() && n < 6) {
    const auto sp = line.find(' ');
    parts[n++] = line.substr(0, sp);
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  if (n < 2 || parts[0] != "PROXY") return {.status = ProxyHeader::Status::bad};
  r.status = ProxyHeader::Status::ok;
  if (parts[1] == "UNKNOWN") return r;  // the proxy's own connection (health check): the peer stands
  if ((parts[1] != "TCP4" && parts[1] != "TCP6") || n != 6) return {.status = ProxyHeader::Status::bad};
  asio::error_code ec;
  const auto a = asio::ip::make_address(std::string(parts[2]), ec);
  unsigned port = 0;
  const auto [p, e] = std::from_chars(parts[4].data(), parts[4].data() + parts[4].size(), port);
  if (ec || e != std::errc{} || p != parts[4].data() + parts[4].size() || port > 65535 ||
      a.is_v4() != (parts[1] == "TCP4"))
    return {.status = ProxyHeader::Status::bad};
  r.source = asio::ip::tcp::endpoint(a, static_cast<std::uint16_t>(port));
  return r;
}

ProxyHeader parse_v2(std::span<const std::uint8_t> b) noexcept {
  if (b.size() < 16) return {};
  const std::size_t len = (std::size_t{b[14]} << 8) | b[15];
  if ((b[12] & 0xF0) != 0x20 || 16 + len > k_max_proxy_header) return {.status = ProxyHeader::Status::bad};
  if (b.size() < 16 + len) return {};
  ProxyHeader r{.status = ProxyHeader::Status::ok, .consumed = 16 + len};
  const std::uint8_t cmd = b[12] & 0x0F, family = b[13];
  if (cmd == 0x0) return r;  // LOCAL: the proxy's own connection
  if (cmd != 0x1) return {.status = ProxyHeader::Status::bad};
  const auto a = b.subspan(16);
  if (family == 0x11 && len >= 12) {  // TCP over IPv4: src, dst, sport, dport
    asio::ip::address_v4::bytes_type src;
    std::copy_n(a.begin(), 4, src.begin());
    r.source = asio::ip::tcp::endpoint(asio::ip::address_v4(src), static_cast<std::uint16_t>((a[8] << 8) | a[9]));
  } else if (family == 0x21 && len >= 36) {  // TCP over IPv6
    asio::ip::address_v6::bytes_type src;
    std::copy_n(a.begin(), 16, src.begin());
    r.source = asio::ip::tcp::endpoint(asio::ip::address_v6(src), static_cast<std::uint16_t>((a[32] << 8) | a[33]));
  } else if ((family & 0xF0) != 0x00 && (family & 0x0F) != 0x1) {
    // UDP or a unix socket: not a TCP client, keep the peer.
  } else if (family != 0x00) {
    return {.status = ProxyHeader::Status::bad};  // TCP family with a short address block
  }
  return r;
}
}  // namespace

ProxyHeader parse_proxy_header(std::span<const std::byte> data) noexcept {
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  const std::size_t n = data.size();
  // Decide the version on what has arrived; a prefix of either signature may need more bytes.
  const std::size_t sig = std::min<std::size_t>(n, 12);
  if (std::memcmp(p, k_v2_signature, sig) == 0) return n < 12 ? ProxyHeader{} : parse_v2({p, n});
  constexpr std::string_view v1 = "PROXY ";
  const std::size_t pre = std::min(n, v1.size());
  if (std::memcmp(p, v1.data(), pre) != 0) return {.status = ProxyHeader::Status::bad};
  if (n < v1.size()) return {};
  return parse_v1({reinterpret_cast<const char*>(p), n});
}

// ---------------------------------------------------------------- the per-IP table

std::uint32_t Admission::jittered_retry_after() const noexcept {
  return retry_after_seconds(std::chrono::milliseconds(retry_after_ms.load(std::memory_order_relaxed)),
                             retry_jitter.load(std::memory_order_relaxed));
}

std::size_t IpLimiter::Hash::operator()(const IpKey& k) const noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, k.data(), 8);
  std::memcpy(&b, k.data() + 8, 8);
  std::uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
  return static_cast<std::size_t>(h ^ (h >> 31));
}

void IpLimiter::set(Settings s) noexcept {
  max_connections_.store(s.max_connections, std::memory_order_relaxed);
  handshakes_per_second_.store(s.handshakes_per_second, std::memory_order_relaxed);
  handshake_burst_.store(s.handshake_burst, std::memory_order_relaxed);
}

IpLimiter::Settings IpLimiter::settings() const noexcept {
  return {.max_connections = max_connections_.load(std::memory_order_relaxed),
          .handshakes_per_second = handshakes_per_second_.load(std::memory_order_relaxed),
          .handshake_burst = handshake_burst_.load(std::memory_order_relaxed)};
}

IpLimiter::Verdict IpLimiter::acquire(const IpKey& ip, std::uint32_t now) {
  const Settings settings_ = settings();
  Stripe& s = stripe_of(ip);
  std::lock_guard lock(s.mutex);
  Entry& e = s.map[ip];
  if (settings_.max_connections && e.connections >= settings_.max_connections) return Verdict::too_many_connections;
  if (!e.handshakes.take(1, settings_.handshakes_per_second, settings_.handshake_burst, now)) {
    if (e.connections == 0 && e.handshakes.full(settings_.handshakes_per_second, settings_.handshake_burst, now))
      s.map.erase(ip);
    return Verdict::too_many_handshakes;
  }
  ++e.connections;
  return Verdict::ok;
}

void IpLimiter::release(const IpKey& ip, std::uint32_t now) noexcept {
  const Settings settings_ = settings();
  Stripe& s = stripe_of(ip);
  std::lock_guard lock(s.mutex);
  const auto it = s.map.find(ip);
  if (it == s.map.end()) return;
  Entry& e = it->second;
  if (e.connections > 0) --e.connections;
  if (e.connections == 0 && e.handshakes.full(settings_.handshakes_per_second, settings_.handshake_burst, now))
    s.map.erase(it);
}

void IpLimiter::sweep(std::uint32_t now) noexcept {
  const Settings settings_ = settings();
  Stripe& s = stripes_[next_sweep_.fetch_add(1, std::memory_order_relaxed) % k_stripes];
  std::lock_guard lock(s.mutex);
  for (auto it = s.map.begin(); it != s.map.end();) {
    Entry& e = it->second;
    if (e.connections == 0 && e.handshakes.full(settings_.handshakes_per_second, settings_.handshake_burst, now))
      it = s.map.erase(it);
    else
      ++it;
  }
}

std::size_t IpLimiter::connections(const IpKey& ip) noexcept {
  Stripe& s = stripe_of(ip);
  std::lock_guard lock(s.mutex);
  const auto it = s.map.find(ip);
  return it == s.map.end() ? 0 : it->second.connections;
}

std::size_t IpLimiter::tracked() noexcept {
  std::size_t n = 0;
  for (auto& s : stripes_) {
    std::lock_guard lock(s.mutex);
    n += s.map.size();
  }
  return n;
}

}  // namespace fanout::detail

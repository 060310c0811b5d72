#include <doctest/doctest.h>

#include <fanout/detail/connection_limits.hpp>
#include <fanout/detail/token_bucket.hpp>

#include <cstring>
#include <stdexcept>
#include <string>

using namespace fanout::detail;

namespace {
asio::ip::address ip(const char* s) { return asio::ip::make_address(s); }
std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
}  // namespace

TEST_CASE("token bucket: starts full, refills at its rate, never above its burst") {
  TokenBucket b;
  std::uint32_t t = 1000;
  for (int i = 0; i < 10; ++i) CHECK(b.take(1, 5, 10, t));
  CHECK_FALSE(b.take(1, 5, 10, t));
  CHECK_FALSE(b.take(1, 5, 10, t + 100));  // 0.5 tokens
  CHECK(b.take(1, 5, 10, t + 200));        // 1 token after 200 ms at 5/s
  CHECK_FALSE(b.full(5, 10, t + 200));
  CHECK(b.full(5, 10, t + 60'000));  // a minute later: full, and no more than full
  for (int i = 0; i < 10; ++i) CHECK(b.take(1, 5, 10, t + 60'000));
  CHECK_FALSE(b.take(1, 5, 10, t + 60'000));
  // A cost above what is there takes nothing.
  TokenBucket c;
  CHECK_FALSE(c.take(11, 5, 10, t));
  CHECK(c.take(10, 5, 10, t));
  // Rate 0: no limit.
  TokenBucket d;
  for (int i = 0; i < 1000; ++i) CHECK(d.take(1, 0, 0, t));
  // Across the 32-bit millisecond wrap.
  TokenBucket w;
  const std::uint32_t near_wrap = 0xFFFFFF00u;
  CHECK(w.take(10, 5, 10, near_wrap));
  CHECK(w.take(1, 5, 10, near_wrap + 400u));  // wraps to a small number: 400 ms later, 2 tokens
  CHECK(w.take(1, 5, 10, near_wrap + 400u));
  CHECK_FALSE(w.take(1, 5, 10, near_wrap + 400u));
}

TEST_CASE("CIDR: v4, v6, single addresses, host bits, v4-mapped peers, bad input") {
  const CidrSet set({"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "172.16.5.9/12"});
  CHECK(set.contains(ip("10.1.2.3")));
  CHECK_FALSE(set.contains(ip("11.0.0.1")));
  CHECK(set.contains(ip("192.0.2.7")));
  CHECK_FALSE(set.contains(ip("192.0.2.8")));
  CHECK(set.contains(ip("2001:db8:1::5")));
  CHECK_FALSE(set.contains(ip("2001:db9::1")));
  CHECK(set.contains(ip("172.31.255.255")));  // host bits of 172.16.5.9/12 ignored
  CHECK_FALSE(set.contains(ip("172.32.0.0")));
  CHECK(set.contains(ip("::ffff:10.9.9.9")));  // an IPv4 peer on a dual-stack socket
  const CidrSet all({"0.0.0.0/0"});
  CHECK(all.contains(ip("203.0.113.1")));
  CHECK_FALSE(all.contains(ip("2001:db8::1")));  // /0 of IPv4 is all of IPv4 only
  CHECK_FALSE(CidrSet().contains(ip("10.0.0.1")));
  for (const char* bad : {"10.0.0.0/33", "10.0.0/8", "", "/8", "10.0.0.0/", "10.0.0.0/8x", "2001:db8::/129", "host"})
    CHECK_THROWS_AS(parse_cidr(bad), std::invalid_argument);
}

TEST_CASE("X-Forwarded-For: the rightmost address that is not a trusted proxy") {
  const CidrSet trusted({"10.0.0.0/8"});
  CHECK(client_from_forwarded_for("203.0.113.5", trusted) == ip("203.0.113.5"));
  // What the client wrote itself (left) cannot be trusted: the hop our proxy saw is the client.
  CHECK(client_from_forwarded_for("1.2.3.4, 203.0.113.5", trusted) == ip("203.0.113.5"));
  // Inner proxies we trust are skipped.
  CHECK(client_from_forwarded_for("1.2.3.4, 203.0.113.5, 10.0.0.2 ,10.0.0.3", trusted) == ip("203.0.113.5"));
  CHECK(client_from_forwarded_for("10.0.0.9, 10.0.0.2", trusted) == ip("10.0.0.9"));  // all trusted: leftmost
  CHECK(client_from_forwarded_for("[2001:db8::1]:443", trusted) == ip("2001:db8::1"));
  CHECK(client_from_forwarded_for("198.51.100.1:5555", trusted) == ip("198.51.100.1"));
  CHECK(client_from_forwarded_for("2001:db8::2", trusted) == ip("2001:db8::2"));
  CHECK_FALSE(client_from_forwarded_for("", trusted));
  CHECK_FALSE(client_from_forwarded_for("unknown", trusted));
  CHECK_FALSE(client_from_forwarded_for("1.2.3.4, garbage, 10.0.0.2", trusted));  // no hop vouches for it
}

TEST_CASE("PROXY protocol v1") {
  const std::string h = "PROXY TCP4 203.0.113.9 10.0.0.1 56324 8080\r\nGET / HTTP/1.1\r\n";
  const auto r = parse_proxy_header(bytes(h));
  REQUIRE(r.status == ProxyHeader::Status::ok);
  CHECK(r.consumed == h.find("GET"));
  REQUIRE(r.source);
  CHECK(r.source->address() == ip("203.0.113.9"));
  CHECK(r.source->port() == 56324);
  const auto v6 = parse_proxy_header(bytes("PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n"));
  REQUIRE(v6.status == ProxyHeader::Status::ok);
  CHECK(v6.source->address() == ip("2001:db8::7"));
  const auto unknown = parse_proxy_header(bytes("PROXY UNKNOWN\r\n"));
  CHECK(unknown.status == ProxyHeader::Status::ok);
  CHECK_FALSE(unknown.source);
  // Byte by byte: need_more until the line ends.
  for (std::size_t n = 0; n < h.find('\n'); ++n)
    CHECK(parse_proxy_header(bytes(h.substr(0, n))).status == ProxyHeader::Status::need_more);
  for (const char* bad :
       {"GET / HTTP/1.1\r\n", "PROXY TCP4 203.0.113.9 10.0.0.1 56324\r\n", "PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 10.0.0.1 99999 2\r\n", "PROXY UDP4 1.2.3.4 10.0.0.1 1 2\r\n", "PROXX TCP4"})
    CHECK(parse_proxy_header(bytes(bad)).status == ProxyHeader::Status::bad);
  CHECK(parse_proxy_header(bytes("PROXY " + std::string(120, 'x'))).status == ProxyHeader::Status::bad);
}

TEST_CASE("PROXY protocol v2") {
  const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  std::string h(reinterpret_cast<const char*>(sig), 12);
  h += '\x21';  // v2, PROXY
  h += '\x11';  // TCP over IPv4
  h += std::string("\x00\x0c", 2);
  h += std::string("\xcb\x00\x71\x09", 4);  // 203.0.113.9
  h += std::string("\x0a\x00\x00\x01", 4);  // 10.0.0.1
  h += std::string("\xdb\xfc", 2);          // 56316
  h += std::string("\x1f\x90", 2);          // 8080
  const std::string all = h + "GET";
  const auto r = parse_proxy_header(bytes(all));
  REQUIRE(r.status == ProxyHeader::Status::ok);
  CHECK(r.consumed == h.size());
  REQUIRE(r.source);
  CHECK(r.source->address() == ip("203.0.113.9"));
  CHECK(r.source->port() == 56316);
  for (std::size_t n = 0; n < h.size(); ++n)
    CHECK(parse_proxy_header(bytes(h.substr(0, n))).status == ProxyHeader::Status::need_more);
  std::string local(reinterpret_cast<const char*>(sig), 12);
  local += std::string("\x20\x00\x00\x00", 4);  // LOCAL: the proxy's own health check
  const auto l = parse_proxy_header(bytes(local));
  CHECK(l.status == ProxyHeader::Status::ok);
  CHECK_FALSE(l.source);
  std::string v1ver = h;
  v1ver[12] = '\x11';  // version 1 in the binary form: bad
  CHECK(parse_proxy_header(bytes(v1ver)).status == ProxyHeader::Status::bad);
  std::string huge(reinterpret_cast<const char*>(sig), 12);
  huge += std::string("\x21\x11\xff\xff", 4);  // 65535 bytes of addresses: over the limit
  CHECK(parse_proxy_header(bytes(huge)).status == ProxyHeader::Status::bad);
}

TEST_CASE("IpLimiter: connections and handshake rate per IP, forgotten when idle") {
  IpLimiter lim({.max_connections = 2, .handshakes_per_second = 10, .handshake_burst = 3});
  const auto a = ip_key(ip("192.0.2.1")), b = ip_key(ip("192.0.2.2"));
  std::uint32_t t = 5000;
  CHECK(lim.acquire(a, t) == IpLimiter::Verdict::ok);
  CHECK(lim.acquire(a, t) == IpLimiter::Verdict::ok);
  CHECK(lim.acquire(a, t) == IpLimiter::Verdict::too_many_connections);
  CHECK(lim.acquire(b, t) == IpLimiter::Verdict::ok);  // another IP has its own budget
  CHECK(lim.connections(a) == 2);
  lim.release(a, t);
  CHECK(lim.acquire(a, t) == IpLimiter::Verdict::ok);  // the third handshake of the burst
  lim.release(a, t);
  CHECK(lim.acquire(a, t) == IpLimiter::Verdict::too_many_handshakes);  // burst spent
  CHECK(lim.acquire(a, t + 100) == IpLimiter::Verdict::ok);             // one token back after 100 ms
  // IPv4 and its mapped form are the same client.
  CHECK(ip_key(ip("::ffff:192.0.2.1")) == a);
  lim.release(a, t + 100);
  lim.release(a, t + 100);
  lim.release(b, t + 100);
  CHECK(lim.connections(a) == 0);
  for (int i = 0; i < 64; ++i) lim.sweep(t + 10'000);  // every stripe, buckets full again
  CHECK(lim.tracked() == 0);
  // No limits: always ok, nothing remembered after release.
  IpLimiter off({});
  for (int i = 0; i < 1000; ++i) CHECK(off.acquire(a, t) == IpLimiter::Verdict::ok);
  for (int i = 0; i < 1000; ++i) off.release(a, t);
  CHECK(off.tracked() == 0);
}

// Tls13Records (fanout/detail/tls13_records.hpp): fanout's TLS 1.3 record layer, between a "server"
// object and its mirror (the client's view: the same secrets, read and write swapped). Round trips
// for the three suites, every way a stream can be cut, hostile records, KeyUpdate (RFC 8446 §4.6.3)
// and the key schedule's last step against RFC 8448's "Simple 1-RTT Handshake".
#include <doctest/doctest.h>

#if FANOUT_WITH_TLS
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fanout/detail/tls13_records.hpp"

namespace {

using fanout::detail::Tls13Records;
using End = Tls13Records::End;
using Bytes = std::vector<std::byte>;

constexpr std::uint16_t k_suites[] = {0x1301, 0x1302, 0x1303};

std::size_t hash_len(std::uint16_t id) { return id == 0x1302 ? 48 : 32; }

std::vector<std::uint8_t> secret(std::uint16_t id, std::uint8_t fill) {
  std::vector<std::uint8_t> s(hash_len(id));
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>(fill + i * 7);
  return s;
}

// The server's object and its mirror: the mirror writes with the client's secret (the server's read
// side) and reads with the server's.
struct Pair {
  std::unique_ptr<Tls13Records> server, client;
};

Pair make_pair(std::uint16_t id) {
  const auto c = secret(id, 0x11), s = secret(id, 0x5a);
  Pair p{Tls13Records::make(id, c, s, 0), Tls13Records::make(id, s, c, 0)};
  REQUIRE(p.server);
  REQUIRE(p.client);
  return p;
}

Bytes pattern(std::size_t n, std::uint8_t seed = 1) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(seed + i * 31 + (i >> 8));
  return b;
}

Bytes bytes_of(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

// One record of `type` around `plain` (appended to `to`).
void seal_into(Tls13Records& r, const Bytes& plain, Bytes& to,
               Tls13Records::ContentType type = Tls13Records::application_data) {
  Bytes out(plain.size() + Tls13Records::k_overhead);
  const std::size_t n = r.seal(plain, out.data(), type);
  REQUIRE(n == out.size());
  to.insert(to.end(), out.begin(), out.end());
}

Bytes seal(Tls13Records& r, const Bytes& plain, Tls13Records::ContentType type = Tls13Records::application_data) {
  Bytes b;
  seal_into(r, plain, b, type);
  return b;
}

Bytes key_update(Tls13Records& r, bool request) {
  Bytes out(Tls13Records::k_overhead + 5);
  REQUIRE(r.seal_key_update(out.data(), request) == out.size());
  return out;
}

struct Opened {
  End end = End::more;
  Bytes data;        // the application data, concatenated
  int pieces = 0;    // sink calls
  int stopped = -1;  // stop at this sink call (-1: never)
};

// Feeds `stream` (a copy: open() decrypts in place) to `r` in chunks of the given sizes (the last
// one repeated), stopping at the first end other than more.
Opened open_chunks(Tls13Records& r, Bytes stream, std::span<const std::size_t> chunks, Opened o = {}) {
  std::size_t at = 0, i = 0;
  while (at < stream.size() && o.end == End::more) {
    const std::size_t k = std::min(chunks[std::min(i++, chunks.size() - 1)], stream.size() - at);
    o.end = r.open(std::span(stream).subspan(at, k), [&o](std::span<const std::byte> plain) {
      if (o.pieces++ == o.stopped) return false;
      o.data.insert(o.data.end(), plain.begin(), plain.end());
      return true;
    });
    at += k;
  }
  return o;
}

Opened open_all(Tls13Records& r, const Bytes& stream) {
  const std::size_t whole[] = {stream.size() == 0 ? 1 : stream.size()};
  return open_chunks(r, stream, whole);
}

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes b;
  for (const auto& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

Bytes from_hex(std::string_view h) {
  Bytes b;
  int nibbles = 0, v = 0;
  for (char ch : h) {
    int d;
    if (ch >= '0' && ch <= '9')
      d = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
      d = ch - 'a' + 10;
    else
      continue;
    v = v * 16 + d;
    if (++nibbles % 2 == 0) b.push_back(static_cast<std::byte>(std::exchange(v, 0)));
  }
  return b;
}

std::vector<std::uint8_t> to_u8(const Bytes& b) {
  std::vector<std::uint8_t> v(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) v[i] = std::to_integer<std::uint8_t>(b[i]);
  return v;
}

// application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length)
// (RFC 8446 §7.2), through OpenSSL's EVP_PKEY HKDF: written apart from the record layer's own.
std::vector<std::uint8_t> next_secret(std::uint16_t id, const std::vector<std::uint8_t>& current) {
  // HkdfLabel: uint16 length, "tls13 traffic upd" with its length byte, an empty context.
  constexpr std::string_view label = "tls13 traffic upd";
  std::uint8_t info[3 + label.size() + 1] = {0, static_cast<std::uint8_t>(current.size()), label.size()};
  std::copy(label.begin(), label.end(), info + 3);
  info[sizeof info - 1] = 0;
  std::vector<std::uint8_t> out(current.size());
  std::size_t out_len = out.size();
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                                  EVP_PKEY_CTX_free);
  REQUIRE(ctx);
  REQUIRE(EVP_PKEY_derive_init(ctx.get()) == 1);
  REQUIRE(EVP_PKEY_CTX_set_hkdf_mode(ctx.get(), EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) == 1);
  REQUIRE(EVP_PKEY_CTX_set_hkdf_md(ctx.get(), id == 0x1302 ? EVP_sha384() : EVP_sha256()) == 1);
  REQUIRE(EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), current.data(), static_cast<int>(current.size())) == 1);
  REQUIRE(EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), info, static_cast<int>(sizeof info)) == 1);
  REQUIRE(EVP_PKEY_derive(ctx.get(), out.data(), &out_len) == 1);
  REQUIRE(out_len == out.size());
  return out;
}

}  // namespace

TEST_CASE("Tls13Records: make takes the three TLS 1.3 suites with secrets of their hash's size") {
  Tls13Records::Suite s{};
  CHECK(Tls13Records::suite_of(0x1301, s));
  CHECK(s == Tls13Records::Suite::aes_128_gcm_sha256);
  CHECK(Tls13Records::suite_of(0x1302, s));
  CHECK(s == Tls13Records::Suite::aes_256_gcm_sha384);
  CHECK(Tls13Records::suite_of(0x1303, s));
  CHECK(s == Tls13Records::Suite::chacha20_poly1305_sha256);
  CHECK_FALSE(Tls13Records::suite_of(0x1304, s));  // AES-128-CCM: not offered
  CHECK_FALSE(Tls13Records::suite_of(0xc02f, s));  // a TLS 1.2 suite
  CHECK_FALSE(Tls13Records::make(0x1304, secret(0x1301, 1), secret(0x1301, 2), 0));
  CHECK_FALSE(Tls13Records::make(0x1301, secret(0x1302, 1), secret(0x1302, 2), 0));  // 48-byte secrets
  CHECK_FALSE(Tls13Records::make(0x1302, secret(0x1301, 1), secret(0x1301, 2), 0));  // 32-byte secrets
  CHECK_FALSE(Tls13Records::make(0x1301, {}, secret(0x1301, 2), 0));
}

TEST_CASE("Tls13Records: RFC 8448 simple 1-RTT: the application records, byte for byte") {
  // RFC 8448 §3: client/server application_traffic_secret_0 (TLS_AES_128_GCM_SHA256), the client's
  // first application data record (seq 0) and the server's answer (seq 1, after its NewSessionTicket),
  // both 50 bytes 00..31. Matching them checks HKDF-Expand-Label ("key", "iv"), the nonce, the
  // additional data and the inner content type at once.
  const auto c_ap = to_u8(from_hex("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"));
  const auto s_ap = to_u8(from_hex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"));
  const Bytes client_record = from_hex(
      "17030300 43a23f70 54b62c94 d0affafe 8228ba55 cbefacea 42f914aa 66bcab3f 2b9819a8 a5b46b39 5bd54a9a"
      "20441e2b 62974e1f 5a6292a2 977014bd 1e3deae6 3aeebb21 694915e4");
  const Bytes server_record = from_hex(
      "17030300 432e937e 11ef4ac7 40e538ad 36005fc4 a46932fc 3225d05f 82aa1b36 e30efaf9 7d90e6df fc602dcb"
      "501a59a8 fcc49c4b f2e5f0a2 1c0047c2 abf33254 0dd032e1 67c2955d");
  Bytes plain(50);
  for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<std::byte>(i);

  auto server = Tls13Records::make(0x1301, c_ap, s_ap, 1);  // the NewSessionTicket was record 0
  auto client = Tls13Records::make(0x1301, s_ap, c_ap, 0);
  REQUIRE(server);
  REQUIRE(client);
  CHECK(seal(*server, plain) == server_record);
  CHECK(seal(*client, plain) == client_record);
  const Opened o = open_all(*server, client_record);
  CHECK(o.end == End::more);
  CHECK(o.data == plain);
}

TEST_CASE("Tls13Records: round trips for every suite, both directions, byte-exact") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    Pair p = make_pair(id);
    // Many records of many sizes, a zero-length one and a full 2^14-byte one among them.
    const std::size_t sizes[] = {1, 0, 5, 200, 1500, 2047, 2048, 2049, 9000, Tls13Records::k_max_plain, 3, 0, 77};
    for (int dir = 0; dir < 2; ++dir) {
      Tls13Records& from = dir == 0 ? *p.client : *p.server;
      Tls13Records& to = dir == 0 ? *p.server : *p.client;
      for (int round = 0; round < 3; ++round) {
        Bytes stream, expected;
        for (std::size_t i = 0; i < std::size(sizes); ++i) {
          const Bytes plain = pattern(sizes[i], static_cast<std::uint8_t>(i + round));
          seal_into(from, plain, stream);
          expected.insert(expected.end(), plain.begin(), plain.end());
        }
        const Opened o = open_all(to, stream);
        CHECK(o.end == End::more);
        CHECK(o.data == expected);
        CHECK(o.pieces == static_cast<int>(std::size(sizes)) - 2);  // zero-length records reach no sink
        CHECK(to.pending_bytes() == 0);
      }
    }
  }
}

TEST_CASE("Tls13Records: a stream cut at every byte opens the same (the partial-record path)") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    std::vector<Bytes> plains = {pattern(40, 1), pattern(0), pattern(3, 2), pattern(100, 3)};
    Pair p = make_pair(id);
    Bytes stream;
    for (const auto& plain : plains) seal_into(*p.client, plain, stream);
    const Bytes expected = concat(plains);
    // Two pieces, cut at each offset...
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      CAPTURE(cut);
      Pair q = make_pair(id);
      Bytes copy = stream;
      Opened o;
      auto sink = [&o](std::span<const std::byte> plain) {
        o.data.insert(o.data.end(), plain.begin(), plain.end());
        return true;
      };
      CHECK(q.server->open(std::span(copy).first(cut), sink) == End::more);
      CHECK(q.server->open(std::span(copy).subspan(cut), sink) == End::more);
      CHECK(o.data == expected);
      CHECK(q.server->pending_bytes() == 0);
    }
    // ... one byte at a time, and in chunks of each size up to a record and a half.
    for (std::size_t chunk = 1; chunk <= 200; ++chunk) {
      CAPTURE(chunk);
      Pair q = make_pair(id);
      const std::size_t sizes[] = {chunk};
      const Opened o = open_chunks(*q.server, stream, sizes);
      CHECK(o.end == End::more);
      CHECK(o.data == expected);
      CHECK(q.server->pending_bytes() == 0);
    }
  }
}

TEST_CASE("Tls13Records: full-size records cut in uneven chunks; the partial buffer only while one is pending") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    Pair p = make_pair(id);
    std::vector<Bytes> plains;
    Bytes stream;
    for (int i = 0; i < 6; ++i) {
      plains.push_back(pattern(i % 2 ? Tls13Records::k_max_plain : 1000u * static_cast<std::size_t>(i), 9));
      seal_into(*p.client, plains.back(), stream);
    }
    const std::size_t chunks[] = {1, 4, 1, 16000, 700, 5, 16389, 3, 9000, 17, 16384, 11, 2};
    const Opened o = open_chunks(*p.server, stream, chunks);
    CHECK(o.end == End::more);
    CHECK(o.data == concat(plains));
    CHECK(p.server->pending_bytes() == 0);

    // A record's first 3 bytes, then its header and body but one byte: kept, then finished.
    Bytes one = seal(*p.client, pattern(500));
    Bytes first = Bytes(one.begin(), one.begin() + 3), rest = Bytes(one.begin() + 3, one.end() - 1);
    Bytes last = Bytes(one.end() - 1, one.end());
    CHECK(open_all(*p.server, first).end == End::more);
    CHECK(p.server->pending_bytes() == 3);
    CHECK(open_all(*p.server, rest).end == End::more);
    CHECK(p.server->pending_bytes() == one.size() - 1);
    const Opened tail = open_all(*p.server, last);
    CHECK(tail.end == End::more);
    CHECK(tail.data == pattern(500));
    CHECK(p.server->pending_bytes() == 0);
  }
}

TEST_CASE("Tls13Records: seal gathers iovec pieces, small ones copied and large ones direct, the same record") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    const Bytes whole = pattern(Tls13Records::k_max_plain, 42);
    // Piece sizes around the 2 KiB direct-encryption threshold, summing to 2^14.
    const std::size_t sizes[] = {1, 2047, 2048, 3, 5000, 100, 2049, 10, 4000, 1126};
    std::vector<iovec> pieces;
    std::size_t at = 0;
    for (const std::size_t n : sizes) {
      pieces.push_back({const_cast<std::byte*>(whole.data() + at), n});
      at += n;
    }
    REQUIRE(at == whole.size());
    // The same record as one contiguous piece: a fresh pair at the same sequence number.
    Pair a = make_pair(id), b = make_pair(id);
    Bytes gathered(whole.size() + Tls13Records::k_overhead);
    REQUIRE(a.server->seal(pieces, whole.size(), gathered.data()) == gathered.size());
    CHECK(gathered == seal(*b.server, whole));
    const Opened o = open_all(*a.client, gathered);
    CHECK(o.end == End::more);
    CHECK(o.data == whole);

    // `bytes` may end inside a piece: only that many are taken.
    Bytes part(3000 + Tls13Records::k_overhead);
    REQUIRE(a.server->seal(pieces, 3000, part.data()) == part.size());
    CHECK(open_all(*a.client, part).data == Bytes(whole.begin(), whole.begin() + 3000));

    // Pieces holding fewer bytes than promised: refused.
    Bytes scratch(whole.size() + Tls13Records::k_overhead + 100);
    CHECK(a.server->seal(std::span(pieces).first(2), 3000, scratch.data()) == 0);

    // An empty piece between others is skipped, not the end of the gather.
    const iovec with_empty[] = {
        {const_cast<std::byte*>(whole.data()), 10}, {nullptr, 0}, {const_cast<std::byte*>(whole.data() + 10), 2990}};
    Bytes gapped(3000 + Tls13Records::k_overhead);
    REQUIRE(a.server->seal(with_empty, 3000, gapped.data()) == gapped.size());
    CHECK(open_all(*a.client, gapped).data == Bytes(whole.begin(), whole.begin() + 3000));
  }
}

TEST_CASE("Tls13Records: 2^14 bytes is the largest record; 2^14 + 1 is refused and costs no sequence number") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    Pair p = make_pair(id);
    const Bytes big = pattern(Tls13Records::k_max_plain + 1);
    Bytes out(big.size() + Tls13Records::k_overhead);
    CHECK(p.server->seal(big, out.data()) == 0);
    const Bytes max = Bytes(big.begin(), big.end() - 1);
    const Bytes record = seal(*p.server, max);
    CHECK(record.size() == Tls13Records::k_max_plain + Tls13Records::k_overhead);
    const Opened o = open_all(*p.client, record);  // sequence number 0: the refused one took none
    CHECK(o.end == End::more);
    CHECK(o.data == max);
  }
}

TEST_CASE("Tls13Records: padding after the content type is taken off") {
  Pair p = make_pair(0x1301);
  // TLSInnerPlaintext "abc" || 23 || zeros, sealed with inner type 0 so the zeros follow the type.
  Bytes inner = bytes_of({'a', 'b', 'c', 23, 0, 0, 0, 0, 0});
  const Opened o = open_all(*p.server, seal(*p.client, inner, Tls13Records::ContentType{0}));
  CHECK(o.end == End::more);
  CHECK(o.data == bytes_of({'a', 'b', 'c'}));
  // A padded zero-length application data record.
  const Opened empty = open_all(*p.server, seal(*p.client, bytes_of({23, 0, 0}), Tls13Records::ContentType{0}));
  CHECK(empty.end == End::more);
  CHECK(empty.pieces == 0);
}

TEST_CASE("Tls13Records: a flipped bit anywhere the tag covers is bad_record_mac") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    Pair p = make_pair(id);
    const Bytes record = seal(*p.client, pattern(20));
    // Byte 0 is the outer type and bytes 3-4 the length, each checked before the tag; the
    // version (1-2), the ciphertext and the tag are the tag's to catch.
    for (std::size_t i = 1; i < record.size(); ++i) {
      if (i == 3 || i == 4) continue;
      for (int bit = 0; bit < 8; ++bit) {
        Pair q = make_pair(id);
        Bytes bad = record;
        bad[i] ^= static_cast<std::byte>(1 << bit);
        const Opened o = open_all(*q.server, bad);
        CHECK(o.end == End::fatal);
        CHECK(q.server->fatal_alert() == Tls13Records::bad_record_mac);
        CHECK(o.pieces == 0);
      }
    }
    // A length one short: the record is cut before its tag ends.
    Bytes shorter = record;
    shorter[4] = static_cast<std::byte>(std::to_integer<int>(shorter[4]) - 1);
    shorter.pop_back();
    CHECK(open_all(*make_pair(id).server, shorter).end == End::fatal);
    // Too short to hold a content type and a tag.
    Pair r = make_pair(id);
    CHECK(open_all(*r.server, bytes_of({23, 3, 3, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})).end ==
          End::fatal);
    CHECK(r.server->fatal_alert() == Tls13Records::bad_record_mac);
    Pair e = make_pair(id);
    CHECK(open_all(*e.server, bytes_of({23, 3, 3, 0, 0})).end == End::fatal);
    CHECK(e.server->fatal_alert() == Tls13Records::bad_record_mac);
  }
}

TEST_CASE("Tls13Records: a record longer than 2^14 + 256 is record_overflow from its header alone") {
  const std::size_t max_body = Tls13Records::k_max_record - Tls13Records::k_header;  // 16640
  {
    Pair p = make_pair(0x1301);
    const Bytes header =
        bytes_of({23, 3, 3, static_cast<int>((max_body + 1) >> 8), static_cast<int>((max_body + 1) & 0xff)});
    const Opened o = open_all(*p.server, header);
    CHECK(o.end == End::fatal);
    CHECK(p.server->fatal_alert() == Tls13Records::record_overflow);
  }
  {
    Pair p = make_pair(0x1301);  // the header in two reads
    CHECK(open_all(*p.server, bytes_of({23, 3})).end == End::more);
    CHECK(open_all(*p.server, bytes_of({3, 0xff, 0xff})).end == End::fatal);
    CHECK(p.server->fatal_alert() == Tls13Records::record_overflow);
  }
  {
    Pair p = make_pair(0x1301);  // after a good record in the same read
    Bytes stream = seal(*p.client, pattern(10));
    const Bytes header = bytes_of({23, 3, 3, 0x41, 0x01});
    stream.insert(stream.end(), header.begin(), header.end());
    const Opened o = open_all(*p.server, stream);
    CHECK(o.end == End::fatal);
    CHECK(o.data == pattern(10));
    CHECK(p.server->fatal_alert() == Tls13Records::record_overflow);
  }
  {
    Pair p = make_pair(0x1301);  // exactly the limit: waits for the body
    CHECK(open_all(*p.server, bytes_of({23, 3, 3, static_cast<int>(max_body >> 8), static_cast<int>(max_body & 0xff)}))
              .end == End::more);
    CHECK(p.server->pending_bytes() == Tls13Records::k_header);
  }
}

TEST_CASE("Tls13Records: unprotected records and unknown inner types are unexpected_message") {
  for (const int outer : {20, 21, 22, 0, 24, 255}) {
    CAPTURE(outer);
    Pair p = make_pair(0x1301);
    Bytes record = seal(*p.client, pattern(10));
    record[0] = static_cast<std::byte>(outer);
    const Opened o = open_all(*p.server, record);
    CHECK(o.end == End::fatal);
    CHECK(p.server->fatal_alert() == Tls13Records::unexpected_message);
  }
  // Inner plaintext of zeros only: no content type.
  for (const std::size_t zeros : {std::size_t{1}, std::size_t{3}, std::size_t{300}}) {
    Pair p = make_pair(0x1303);
    const Opened o = open_all(*p.server, seal(*p.client, Bytes(zeros - 1), Tls13Records::ContentType{0}));
    CHECK(o.end == End::fatal);
    CHECK(p.server->fatal_alert() == Tls13Records::unexpected_message);
  }
  // change_cipher_spec, heartbeat and others inside protection.
  for (const int inner : {20, 24, 1, 255}) {
    CAPTURE(inner);
    Pair p = make_pair(0x1302);
    const Opened o = open_all(*p.server, seal(*p.client, pattern(4), static_cast<Tls13Records::ContentType>(inner)));
    CHECK(o.end == End::fatal);
    CHECK(p.server->fatal_alert() == Tls13Records::unexpected_message);
  }
}

TEST_CASE("Tls13Records: a handshake record must be exactly one KeyUpdate") {
  struct Case {
    Bytes body;
    Tls13Records::Alert alert;
  };
  const Case cases[] = {
      {{}, Tls13Records::unexpected_message},                                          // empty
      {bytes_of({1, 0, 0, 0}), Tls13Records::unexpected_message},                      // ClientHello
      {bytes_of({4, 0, 0, 1, 0}), Tls13Records::unexpected_message},                   // NewSessionTicket
      {bytes_of({20, 0, 0, 1, 0}), Tls13Records::unexpected_message},                  // Finished
      {bytes_of({24}), Tls13Records::decode_error},                                    // KeyUpdate, cut
      {bytes_of({24, 0, 0, 1}), Tls13Records::decode_error},                           // no request byte
      {bytes_of({24, 0, 0, 1, 2}), Tls13Records::illegal_parameter},                   // request_update 2 (§4.6.3)
      {bytes_of({24, 0, 0, 2, 1, 0}), Tls13Records::decode_error},                     // length 2
      {bytes_of({24, 0, 0, 1, 1, 24, 0, 0, 1, 0}), Tls13Records::unexpected_message},  // two in one record (§5.1)
      {bytes_of({24, 0, 0, 1, 0, 'x'}), Tls13Records::unexpected_message},             // data after it in its record
  };
  for (const Case& c : cases) {
    CAPTURE(c.body.size());
    Pair p = make_pair(0x1301);
    Bytes stream = seal(*p.client, c.body, Tls13Records::handshake);
    seal_into(*p.client, pattern(5), stream);  // never looked at
    const Opened o = open_all(*p.server, stream);
    CHECK(o.end == End::fatal);
    CHECK(p.server->fatal_alert() == c.alert);
    CHECK(o.pieces == 0);
    CHECK_FALSE(p.server->key_update_due());
  }
}

TEST_CASE("Tls13Records: an alert record ends the peer's writing; nothing after it is looked at") {
  for (const auto& alert : {bytes_of({1, 0}), bytes_of({2, 40}), bytes_of({2, 20})}) {
    Pair p = make_pair(0x1301);
    Bytes stream = seal(*p.client, pattern(7));
    seal_into(*p.client, alert, stream, Tls13Records::alert);
    seal_into(*p.client, pattern(8), stream);
    const Opened o = open_all(*p.server, stream);
    CHECK(o.end == End::peer_closed);
    CHECK(o.data == pattern(7));
    // Later reads: still closed, no data.
    const Opened later = open_all(*p.server, seal(*p.client, pattern(9)));
    CHECK(later.end == End::peer_closed);
    CHECK(later.pieces == 0);
  }
  // An alert must be two bytes.
  for (const auto& alert : {bytes_of({1}), bytes_of({1, 0, 0}), Bytes{}}) {
    Pair p = make_pair(0x1301);
    const Opened o = open_all(*p.server, seal(*p.client, alert, Tls13Records::alert));
    CHECK(o.end == End::fatal);
    CHECK(p.server->fatal_alert() == Tls13Records::decode_error);
  }
  // Our own alerts open on the other side as the end of the peer's writing.
  Pair p = make_pair(0x1302);
  Bytes out(Tls13Records::k_overhead + 2);
  REQUIRE(p.server->seal_alert(Tls13Records::bad_record_mac, out.data()) == out.size());
  CHECK(open_all(*p.client, out).end == End::peer_closed);
}

TEST_CASE("Tls13Records: a replayed record and every record after a fatal one are refused") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    Pair p = make_pair(id);
    const Bytes record = seal(*p.client, pattern(30));
    CHECK(open_all(*p.server, record).data == pattern(30));
    const Opened again = open_all(*p.server, record);
    CHECK(again.end == End::fatal);
    CHECK(again.pieces == 0);
    CHECK(p.server->fatal_alert() == Tls13Records::bad_record_mac);

    // good, bad, good in one read: the first is delivered, the third never looked at.
    Pair q = make_pair(id);
    Bytes stream = seal(*q.client, pattern(11));
    const std::size_t bad_at = stream.size();
    seal_into(*q.client, pattern(12), stream);
    seal_into(*q.client, pattern(13), stream);
    stream[bad_at + 7] ^= std::byte{0x80};
    const Opened o = open_all(*q.server, stream);
    CHECK(o.end == End::fatal);
    CHECK(o.data == pattern(11));
    // ... nor in a later read, even one that is good in itself.
    const Opened later = open_all(*q.server, seal(*q.client, pattern(14)));
    CHECK(later.end == End::fatal);
    CHECK(later.pieces == 0);
  }
}

TEST_CASE("Tls13Records: a fatal header cut across reads stays fatal; later reads are not looked at") {
  // The header's last bytes arrive in a second read and make it fatal: a third read must not take
  // the bad length as the size of a record to finish (it would not fit the partial buffer).
  Pair p = make_pair(0x1301);
  CHECK(open_all(*p.server, bytes_of({23, 3, 3})).end == End::more);
  CHECK(open_all(*p.server, bytes_of({0xff, 0xff})).end == End::fatal);
  CHECK(p.server->fatal_alert() == Tls13Records::record_overflow);
  const Opened later = open_all(*p.server, pattern(Tls13Records::k_max_record * 2));
  CHECK(later.end == End::fatal);
  CHECK(later.pieces == 0);
  CHECK(p.server->pending_bytes() == 0);
}

TEST_CASE("Tls13Records: a sink that returns false stops the read; the rest is not looked at") {
  Pair p = make_pair(0x1301);
  Bytes stream = seal(*p.client, pattern(5, 1));
  seal_into(*p.client, pattern(6, 2), stream);
  seal_into(*p.client, pattern(7, 3), stream);
  Opened o;
  o.stopped = 1;
  o = open_chunks(*p.server, stream, std::vector<std::size_t>{stream.size()}, o);
  CHECK(o.end == End::stopped);
  CHECK(o.data == pattern(5, 1));
  CHECK(o.pieces == 2);
}

TEST_CASE("Tls13Records: KeyUpdate (RFC 8446 §4.6.3), for every suite") {
  for (const std::uint16_t id : k_suites) {
    CAPTURE(id);
    const auto c0 = secret(id, 0x11), s0 = secret(id, 0x5a);  // make_pair's secrets
    const auto c1 = next_secret(id, c0), s1 = next_secret(id, s0);
    Pair p = make_pair(id);
    // Some traffic first, so the new keys start at sequence 0 from a later number.
    CHECK(open_all(*p.server, seal(*p.client, pattern(100))).data == pattern(100));
    CHECK(open_all(*p.client, seal(*p.server, pattern(101))).data == pattern(101));
    CHECK_FALSE(p.server->key_update_due());

    // The client updates its write key and asks the server to update its own.
    const Bytes request = key_update(*p.client, true);
    const Bytes data = seal(*p.client, pattern(102));
    Opened o = open_all(*p.server, concat({request, data}));
    CHECK(o.end == End::more);
    CHECK(o.data == pattern(102));
    CHECK(p.server->key_update_due());
    // What followed the KeyUpdate is under the client's next secret, from sequence 0.
    auto reader = Tls13Records::make(id, c1, s0, 0);
    REQUIRE(reader);
    CHECK(open_all(*reader, data).data == pattern(102));
    // The old read key is gone: a record under it at the server's next sequence number (1) fails.
    {
      Pair fresh = make_pair(id);
      (void)seal(*fresh.client, pattern(1));
      const Opened stale = open_all(*p.server, seal(*fresh.client, pattern(103)));
      CHECK(stale.end == End::fatal);
      CHECK(p.server->fatal_alert() == Tls13Records::bad_record_mac);
    }
    p = make_pair(id);  // the same history again, on objects that did not fail
    CHECK(open_all(*p.server, seal(*p.client, pattern(100))).end == End::more);
    CHECK(open_all(*p.client, seal(*p.server, pattern(101))).end == End::more);
    CHECK(open_all(*p.server, concat({key_update(*p.client, true), seal(*p.client, pattern(102))})).end == End::more);

    // A second request before the server answered: still one answer.
    CHECK(open_all(*p.server, key_update(*p.client, true)).end == End::more);
    CHECK(p.server->key_update_due());
    const Bytes answer = key_update(*p.server, false);
    CHECK_FALSE(p.server->key_update_due());
    const Bytes after = seal(*p.server, pattern(104));
    // The mirror opens the answer and what follows; the answer does not ask it for one.
    o = open_all(*p.client, concat({answer, after}));
    CHECK(o.end == End::more);
    CHECK(o.data == pattern(104));
    CHECK_FALSE(p.client->key_update_due());
    // The server's records after its answer are under its next secret, from sequence 0.
    auto server_reader = Tls13Records::make(id, s1, c0, 0);
    REQUIRE(server_reader);
    CHECK(open_all(*server_reader, after).data == pattern(104));

    // update_not_requested: the read key moves, nothing is owed.
    o = open_all(*p.server, concat({key_update(*p.client, false), seal(*p.client, pattern(105))}));
    CHECK(o.end == End::more);
    CHECK(o.data == pattern(105));
    CHECK_FALSE(p.server->key_update_due());

    // A KeyUpdate cut at every byte across two reads.
    for (std::size_t cut = 0; cut <= Tls13Records::k_overhead + 5; ++cut) {
      Pair q = make_pair(id);
      Bytes s = key_update(*q.client, true);
      seal_into(*q.client, pattern(9), s);
      Opened oq;
      auto sink = [&oq](std::span<const std::byte> plain) {
        oq.data.insert(oq.data.end(), plain.begin(), plain.end());
        return true;
      };
      CHECK(q.server->open(std::span(s).first(cut), sink) == End::more);
      CHECK(q.server->open(std::span(s).subspan(cut), sink) == End::more);
      CHECK(oq.data == pattern(9));
      CHECK(q.server->key_update_due());
    }
  }
}

TEST_CASE("Tls13Records: the server renews its write key before 2^24 records under one key") {
  const auto c = secret(0x1301, 3), s = secret(0x1301, 4);
  auto server = Tls13Records::make(0x1301, c, s, (std::uint64_t{1} << 24) - 1);
  REQUIRE(server);
  CHECK_FALSE(server->key_update_due());
  (void)seal(*server, pattern(10));  // record 2^24 - 1, the last under this key
  CHECK(server->key_update_due());
  (void)key_update(*server, false);
  CHECK_FALSE(server->key_update_due());
}
#endif

#include <doctest/doctest.h>

#include <fanout/detail/deflate_stats.hpp>
#include <fanout/detail/deflater.hpp>
#include <fanout/detail/frame_reader.hpp>
#include <fanout/detail/inflater.hpp>
#include <fanout/frame.hpp>

#include <zlib.h>

#include <string>

using fanout::detail::Deflater;
using fanout::detail::Inflater;

namespace {
std::string market_json(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += R"({"instId":"BTC-USDT","px":")" + std::to_string(60000 + i) + R"(","sz":"0.01"},)";
  return s;
}

/// Raw deflate of `in` with zlib directly, minus the 00 00 ff ff tail: what a client sends.
std::string client_deflate(std::string_view in, int level = 6) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
  out.resize(out.size() - z.avail_out - 4);
  deflateEnd(&z);
  return out;
}

/// A masked client frame (zero key) with the given first byte.
std::string client_frame(std::uint8_t first, std::string_view payload) {
  std::string f;
  f += static_cast<char>(first);
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() <= 0xFFFF) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((payload.size() >> (8 * i)) & 0xFF);
  }
  f += std::string(4, '\0');
  f += payload;
  return f;
}
bool feed(fanout::detail::FrameReader& r, std::string_view s) {
  return r.feed(std::as_bytes(std::span(s.data(), s.size())));
}
}  // namespace

TEST_CASE("deflater: round trip through the inflater, and smaller for repetitive JSON") {
  Deflater d;
  Inflater i;
  for (const std::string& in : {std::string(), std::string("x"), market_json(3), market_json(500)}) {
    std::string packed, back;
    REQUIRE(d.compress(in, packed));
    CHECK(i.inflate(packed, 1 << 20, back) == Inflater::Result::ok);
    CHECK(back == in);
  }
  std::string packed;
  REQUIRE(d.compress(market_json(100), packed));
  CHECK(packed.size() * 4 < market_json(100).size());
}

TEST_CASE("deflater: no context carried over, so the same message compresses to the same bytes") {
  Deflater d;
  std::string a, b, c;
  REQUIRE(d.compress(market_json(20), a));
  REQUIRE(d.compress(market_json(20), b));
  CHECK(a == b);
  // ... and each inflates alone, with a fresh stream (what a client with no context does).
  Inflater fresh;
  REQUIRE(fresh.inflate(b, 1 << 20, c) == Inflater::Result::ok);
  CHECK(c == market_json(20));
}

TEST_CASE("inflater: what zlib clients send, at every level") {
  Inflater i;
  for (int level : {0, 1, 9}) {
    std::string back;
    CHECK(i.inflate(client_deflate(market_json(50), level), 1 << 20, back) == Inflater::Result::ok);
    CHECK(back == market_json(50));
  }
}

TEST_CASE("inflater: a bomb stops at the limit, with bounded output") {
  const std::string zeros(8 << 20, '\0');  // 8 MiB of zeros: ~8 KiB compressed
  const std::string bomb = client_deflate(zeros, 9);
  CHECK(bomb.size() < 16 * 1024);
  Inflater i;
  std::string out;
  CHECK(i.inflate(bomb, 64 * 1024, out) == Inflater::Result::too_big);
  CHECK(out.size() <= 64 * 1024 + 16 * 1024);
  // Exactly at the limit is fine; one byte more is not.
  CHECK(i.inflate(client_deflate(std::string(1000, 'a')), 1000, out) == Inflater::Result::ok);
  CHECK(out.size() == 1000);
  CHECK(i.inflate(client_deflate(std::string(1001, 'a')), 1000, out) == Inflater::Result::too_big);
  // The stream is usable after a refusal.
  CHECK(i.inflate(client_deflate("hello"), 1000, out) == Inflater::Result::ok);
  CHECK(out == "hello");
}

TEST_CASE("inflater: corrupt input is refused, not crashed on") {
  Inflater i;
  std::string out;
  CHECK(i.inflate(std::string("\xff\xff\xff\xff\xff\xff", 6), 1 << 20, out) == Inflater::Result::corrupt);
  // A final block followed by more bytes.
  z_stream z{};
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string fin(64, '\0');
  const std::string text = "final";
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(fin.data());
  z.avail_out = static_cast<uInt>(fin.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  fin.resize(fin.size() - z.avail_out);
  deflateEnd(&z);
  CHECK(i.inflate(fin, 1 << 20, out) == Inflater::Result::ok);  // BFINAL ending the message is legal
  CHECK(out == "final");
  CHECK(i.inflate(fin + "junk", 1 << 20, out) == Inflater::Result::corrupt);
  CHECK(i.inflate(client_deflate("after"), 1 << 20, out) == Inflater::Result::ok);
  CHECK(out == "after");
}

TEST_CASE("frame: the deflated form is made once, carries RSV1, and inflates to the payload") {
  auto& stats = fanout::detail::deflate_stats();
  const auto before = stats.compressions.load();
  const std::string payload = market_json(40);
  auto f = fanout::Frame::make(fanout::Opcode::text, payload, {7, 3});
  const fanout::Frame* d = f->deflated(256);
  REQUIRE(d != nullptr);
  CHECK(f->deflated(256) == d);  // shared, not made again
  CHECK(stats.compressions.load() == before + 1);
  CHECK(stats.bytes_saved.load() > 0);
  CHECK((static_cast<unsigned>(d->bytes()[0]) & 0xF0u) == 0xC0u);  // FIN and RSV1
  CHECK(d->opcode() == fanout::Opcode::text);
  CHECK(d->seq() == 7);
  CHECK(d->key_hash() == 3);
  std::string back;
  Inflater i;
  REQUIRE(i.inflate(d->payload_view(), 1 << 20, back) == Inflater::Result::ok);
  CHECK(back == payload);
}

TEST_CASE("frame: small, raw, control and incompressible frames stay as they are") {
  CHECK(fanout::Frame::make(fanout::Opcode::text, "short")->deflated(256) == nullptr);
  CHECK(fanout::Frame::make(fanout::Opcode::text, market_json(40))->deflated(1 << 20) == nullptr);
  CHECK(fanout::Frame::make_close(1000, std::string(100, 'a'))->deflated(0) == nullptr);
  const std::string raw = "HTTP/1.1 200 OK\r\n\r\n" + market_json(40);
  CHECK(fanout::Frame::make_raw(std::as_bytes(std::span(raw)))->deflated(0) == nullptr);
  std::string noise;
  std::uint32_t x = 12345;
  for (int k = 0; k < 4096; ++k) noise += static_cast<char>((x = x * 1103515245 + 12345) >> 24);
  auto f = fanout::Frame::make(fanout::Opcode::binary, noise);
  CHECK(f->deflated(256) == nullptr);
  CHECK(f->deflated(256) == nullptr);  // tried once, remembered
}

TEST_CASE("frame reader: RSV1 messages inflate when negotiated, and are refused otherwise") {
  const std::string text = market_json(10);
  const std::string packed = client_deflate(text);
  {
    fanout::detail::FrameReader r(64 * 1024, fanout::detail::FrameReader::Role::server, true);
    REQUIRE(feed(r, client_frame(0xC1, packed)));  // FIN, RSV1, text
    auto msgs = r.take_messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].payload == text);
    // Uncompressed messages still pass.
    REQUIRE(feed(r, client_frame(0x81, "plain")));
    msgs = r.take_messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].payload == "plain");
  }
  {
    fanout::detail::FrameReader r(64 * 1024, fanout::detail::FrameReader::Role::server, false);
    feed(r, client_frame(0xC1, packed));
    CHECK(r.take_messages().empty());
    CHECK(r.finished());
  }
  {  // RSV1 on a control frame: refused (by wslay with 1002, or by the reader)
    fanout::detail::FrameReader r(64 * 1024, fanout::detail::FrameReader::Role::server, true);
    const bool framed = feed(r, client_frame(0xC9, ""));
    CHECK((!framed || r.finished()));
    CHECK(r.take_pings() == 0);
  }
}

TEST_CASE("frame reader: a compressed message inflating past the bound closes with 1009") {
  const std::string bomb = client_deflate(std::string(4 << 20, '\0'), 9);
  fanout::detail::FrameReader r(64 * 1024, fanout::detail::FrameReader::Role::server, true);
  feed(r, client_frame(0xC2, bomb));
  CHECK(r.take_messages().empty());
  CHECK(r.finished());
  const auto& out = r.replies();
  REQUIRE(out.size() >= 4);
  CHECK(static_cast<unsigned char>(out[0]) == 0x88);
  CHECK(((static_cast<unsigned char>(out[2]) << 8) | static_cast<unsigned char>(out[3])) == 1009);
}

TEST_CASE("frame reader: corrupt compressed data closes with 1007") {
  fanout::detail::FrameReader r(64 * 1024, fanout::detail::FrameReader::Role::server, true);
  feed(r, client_frame(0xC1, std::string("\xff\xff\xff\xff", 4)));
  CHECK(r.take_messages().empty());
  const auto& out = r.replies();
  REQUIRE(out.size() >= 4);
  CHECK(((static_cast<unsigned char>(out[2]) << 8) | static_cast<unsigned char>(out[3])) == 1007);
}

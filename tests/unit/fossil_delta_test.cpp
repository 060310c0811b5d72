#include "fanout/detail/fossil_delta.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace fossil = fanout::detail::fossil;

namespace {

std::string delta_of(std::string_view source, std::string_view target) {
  std::string d;
  fossil::encode(source, target, d);
  return d;
}

std::string round_trip(std::string_view source, std::string_view target) {
  const std::string d = delta_of(source, target);
  std::string out;
  const char* err = fossil::decode(source, d, out, target.size());
  REQUIRE_MESSAGE(err == nullptr, err);
  return out;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

}  // namespace

TEST_CASE("fossil delta: the format's pieces as the specification writes them") {
  // Header: the target size in the 64-letter alphabet and a newline; an insert `N:`; trailer `SUM;`.
  CHECK(delta_of("", "") == "0\n0;");
  CHECK(delta_of("", "A") == "1\n1:A110000;");  // checksum 'A' << 24 = 65 * 64^4 = "110000"
  CHECK(fossil::checksum("") == 0);
  CHECK(fossil::checksum("\x01\x02\x03\x04") == 0x01020304u);
  CHECK(fossil::checksum("\x01\x02\x03\x04\x05") == 0x01020304u + 0x05000000u);
  // A copy `N@OFF,`: 64 = "10" in the alphabet.
  const std::string base(100, 'x');
  const std::string d = delta_of(base, base.substr(0, 64));
  CHECK(d.substr(0, 6) == "10\n10@");
}

TEST_CASE("fossil delta: round trips") {
  CHECK(round_trip("", "") == "");
  CHECK(round_trip("hello", "") == "");
  CHECK(round_trip("", "fresh text with no source") == "fresh text with no source");
  const std::string a =
      R"({"instId":"BTC-USDT","last":"43210.5","bid":"43210.4","ask":"43210.6","vol24h":"12345.678"})";
  const std::string b =
      R"({"instId":"BTC-USDT","last":"43211.0","bid":"43210.9","ask":"43211.1","vol24h":"12345.912"})";
  CHECK(round_trip(a, b) == b);
  CHECK(delta_of(a, b).size() < b.size());
  CHECK(round_trip(b, a) == a);
  CHECK(round_trip(a, a) == a);
  CHECK(delta_of(a, a).size() < 16);
}

TEST_CASE("fossil delta: random sources and edits round trip") {
  std::mt19937 rng(12345);
  for (int round = 0; round < 300; ++round) {
    std::string source(rng() % 2000, '\0');
    for (auto& c : source) c = static_cast<char>(round % 2 ? 'a' + rng() % 4 : rng() % 256);
    std::string target = source;
    const int edits = static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !target.empty(); ++e) {
      const std::size_t at = rng() % target.size();
      switch (rng() % 3) {
        case 0: target.erase(at, rng() % 20); break;
        case 1: target.insert(at, std::string(rng() % 20, static_cast<char>(rng()))); break;
        default: target[at] = static_cast<char>(rng()); break;
      }
    }
    if (round % 7 == 0) std::swap(source, target);
    CHECK(round_trip(source, target) == target);
  }
}

TEST_CASE("fossil delta: literals never split a UTF-8 character") {
  // Multi-byte characters that differ only in their last byte: a copy ending inside one would
  // leave half a character in the literal that follows.
  const std::string a = "prix: 10€ → 12€ · ünïcödé ✓✓✓ fin de la ligne, assez longue pour des copies";
  std::string b = a;
  b.replace(b.find("✓"), 3, "✗");  // same first two bytes as ✓
  b.replace(b.find("ü"), 2, "ú");
  const std::string d = delta_of(a, b);
  CHECK(valid_utf8(d));
  CHECK(round_trip(a, b) == b);
}

TEST_CASE("fossil delta: hostile deltas are refused within bounds") {
  const std::string source = "0123456789abcdefghij";
  std::string out;
  const auto refused = [&](std::string_view delta, std::size_t max = 1 << 20) {
    return fossil::decode(source, delta, out, max) != nullptr;
  };
  CHECK(refused(""));
  CHECK(refused("\n"));
  CHECK(refused("5"));
  CHECK(refused("5\n"));
  CHECK(refused("5\n5:abc"));                      // insert past the delta's end
  CHECK(refused("5\n5@30,0;"));                    // copy outside the source
  CHECK(refused("5\n5@~~~~~~~~~~~~~~~~~~~~,0;"));  // offset overflows
  CHECK(refused("5\n~~~~~~~~~~~~~~~~@0,0;"));      // count overflows
  CHECK(refused("3\n5@0,0;"));                     // more than the header said
  CHECK(refused("6\n5@0,0;"));                     // less than the header said
  CHECK(refused("5\n5@0,1;"));                     // wrong checksum
  CHECK(refused("5\n5@0,x"));                      // unknown segment
  CHECK(refused("5\n5@0,Lmq3G;trailing"));         // bytes after the trailer
  // A header announcing a huge target is refused before anything is allocated.
  CHECK(refused("~~~~~~\n0;", 1 << 20));
  CHECK(refused(delta_of("", std::string(100, 'z')), 99));
  CHECK_FALSE(refused(delta_of("", std::string(100, 'z')), 100));
  // Every prefix of a valid delta is refused, never read past.
  const std::string target = "0123456789abcdefghij and a tail 0123456789";
  const std::string good = delta_of(source, target);
  for (std::size_t n = 0; n < good.size(); ++n) CHECK(refused(std::string_view(good).substr(0, n)));
  CHECK_FALSE(refused(good));
  CHECK(out == target);
  // Random garbage: no crash, and the output never exceeds the bound.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk = good;
    for (int k = 0; k < 3; ++k) junk[rng() % junk.size()] = static_cast<char>(rng());
    if (fossil::decode(source, junk, out, 64) == nullptr) CHECK(out.size() <= 64);
  }
}

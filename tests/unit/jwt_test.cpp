// The hand-written parts of JWT handling: base64url, ECDSA r||s -> DER, splitting a token.
#include <doctest/doctest.h>

#include <fanout/detail/jwt.hpp>

#include <openssl/ecdsa.h>

#include <string>

using namespace fanout::detail;

TEST_CASE("base64url round-trips every length and refuses other spellings") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 1) {
    const auto s = all.substr(0, n);
    const auto e = base64url_encode(s);
    CHECK(e.find_first_of("+/=") == std::string::npos);
    REQUIRE(base64url_decode(e) == s);
  }
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK(base64url_decode("Zg==") == std::nullopt);   // padding
  CHECK(base64url_decode("+/8") == std::nullopt);    // the other alphabet
  CHECK(base64url_decode("Zm9v ") == std::nullopt);  // whitespace
  CHECK(base64url_decode("Z") == std::nullopt);      // 4n+1 characters cannot be
  CHECK(base64url_decode("Zh") == std::nullopt);     // non-zero trailing bits: a second spelling of "f"
  CHECK(base64url_decode("") == std::string());
}

TEST_CASE("ECDSA raw r||s becomes the DER OpenSSL reads, with sign bytes and stripped zeros") {
  auto check_roundtrip = [](const std::string& raw) {
    const auto der = ecdsa_raw_to_der(raw, 32);
    REQUIRE(!der.empty());
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    REQUIRE(sig != nullptr);
    CHECK(p == reinterpret_cast<const unsigned char*>(der.data()) + der.size());
    const BIGNUM *r = nullptr, *s = nullptr;
    ECDSA_SIG_get0(sig, &r, &s);
    unsigned char back[64];
    REQUIRE(BN_bn2binpad(r, back, 32) == 32);
    REQUIRE(BN_bn2binpad(s, back + 32, 32) == 32);
    CHECK(std::string(reinterpret_cast<char*>(back), 64) == raw);
    ECDSA_SIG_free(sig);
  };
  check_roundtrip(std::string(32, '\x11') + std::string(32, '\x22'));
  check_roundtrip(std::string(32, '\xff') + std::string(32, '\x80'));  // high bit: 0x00 added
  check_roundtrip(std::string(31, '\0') + "\x01" + std::string(1, '\0') + std::string(31, '\x7f'));  // leading zeros
  const auto der = ecdsa_raw_to_der(std::string(32, '\xff') + std::string(32, '\xff'), 32);
  CHECK(der.substr(0, 4) == std::string("\x30\x46\x02\x21", 4));
  CHECK(ecdsa_raw_to_der(std::string(63, 'x'), 32).empty());
  CHECK(ecdsa_raw_to_der(std::string(65, 'x'), 32).empty());
  CHECK(ecdsa_raw_to_der({}, 32).empty());
}

TEST_CASE("a token has exactly three parts") {
  auto p = split_jwt("aa.bb.cc");
  REQUIRE(p);
  CHECK(p->header == "aa");
  CHECK(p->payload == "bb");
  CHECK(p->signature == "cc");
  CHECK(p->signing_input == "aa.bb");
  CHECK(split_jwt("aa.bb") == std::nullopt);
  CHECK(split_jwt("aa.bb.cc.dd") == std::nullopt);
  CHECK(split_jwt("") == std::nullopt);
  CHECK(split_jwt("..")->signature.empty());
}

// The bus wire format: round trips, binary safety, and refusal of anything malformed.
#include <doctest/doctest.h>

#include <fanout/bus_message.hpp>

#include <random>
#include <string>

using fanout::BusMessage;

TEST_CASE("bus message: round trip keeps every field and binary payload bytes") {
  const std::string payload("a\nb\0c FO1 9 9 t 1 1\n", 20);
  BusMessage in{.topic = "trades:BTC-USDT",
                .key = "BTC-USDT",
                .payload = payload,
                .seq = 18446744073709551615ull,
                .fence = 42,
                .op = fanout::Opcode::binary};
  const std::string wire = fanout::encode_bus_message(in);
  CHECK(wire.starts_with("FO1 18446744073709551615 42 b 15 8\n"));
  BusMessage out;
  REQUIRE(fanout::decode_bus_message(wire, out));
  CHECK(out.topic == in.topic);
  CHECK(out.key == in.key);
  CHECK(out.payload == payload);
  CHECK(out.seq == in.seq);
  CHECK(out.fence == 42);
  CHECK(out.op == fanout::Opcode::binary);
}

TEST_CASE("bus message: empty key and empty payload") {
  const std::string wire = fanout::encode_bus_message({.topic = "t", .seq = 1});
  CHECK(wire == "FO1 1 0 t 1 0\nt");
  BusMessage out;
  REQUIRE(fanout::decode_bus_message(wire, out));
  CHECK(out.topic == "t");
  CHECK(out.key.empty());
  CHECK(out.payload.empty());
  CHECK(out.op == fanout::Opcode::text);
}

TEST_CASE("bus message: the form the Redis script builds is decoded") {
  // What k_publish_script concatenates for seq 7, fence 3, topic "a:b", key "k", payload "{}".
  BusMessage out;
  REQUIRE(fanout::decode_bus_message("FO1 7 3 t 3 1\na:bk{}", out));
  CHECK(out.seq == 7);
  CHECK(out.fence == 3);
  CHECK(out.topic == "a:b");
  CHECK(out.key == "k");
  CHECK(out.payload == "{}");
}

TEST_CASE("bus message: malformed input is refused") {
  BusMessage out;
  for (const char* bad : {"", "FO1", "FO1 ", "FO2 1 0 t 1 0\nt", "FO1 1 0 t 1 0 t", "FO1 x 0 t 1 0\nt",
                          "FO1 1 0 x 1 0\nt", "FO1 1 0 t 0 0\n", "FO1 1 0 t 2 0\nt", "FO1 1 0 t 1 1\nt",
                          "FO1 1 0 t 1 18446744073709551615\nt", "FO1 1 0 t 18446744073709551615 1\nt",
                          "FO1 99999999999999999999 0 t 1 0\nt", "FO1 -1 0 t 1 0\nt", "FO1 1 0 t 1 0\r\nt"})
    CHECK_MESSAGE(!fanout::decode_bus_message(bad, out), bad);
}

TEST_CASE("bus message: random mutations never read out of bounds") {
  const std::string good = fanout::encode_bus_message({.topic = "topic", .key = "key", .payload = "payload", .seq = 5});
  std::mt19937 rng(7);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const auto at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, 1); break;
        default: s.insert(at, 1, static_cast<char>(rng())); break;
      }
    }
    BusMessage out;
    if (fanout::decode_bus_message(s, out)) {
      ++accepted;
      // Whatever is accepted is consistent with the bytes given.
      CHECK(out.topic.size() + out.key.size() + out.payload.size() < s.size());
      CHECK(out.payload.data() + out.payload.size() == s.data() + s.size());
    }
  }
  CHECK(accepted < 20000);
}

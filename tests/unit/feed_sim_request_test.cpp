// The feed simulator's reading of client requests (tools/feed-sim/request.hpp), which decides what
// a test's upstream gets subscribed to and which requests are answered with error 60012.
#include <doctest/doctest.h>

#ifdef FANOUT_HAVE_FEED_SIM
#include <request.hpp>

using namespace fanout::sim::detail;

TEST_CASE("feed-sim request: subscribe with streams and an id") {
  ClientRequest r;
  std::string why;
  REQUIRE(parse_client_request(
      R"({"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},{"channel":"trades","instId":"X"}],"id":"7"})",
      r, why));
  CHECK(r.op == "subscribe");
  REQUIRE(r.args.size() == 2);
  CHECK(r.args[1] == std::pair<std::string, std::string>{"trades", "X"});
  CHECK(r.id == "7");
}

TEST_CASE("feed-sim request: what is refused, and why") {
  auto why_of = [](std::string_view text) {
    ClientRequest r;
    std::string why;
    CHECK_FALSE(parse_client_request(text, r, why));
    return why;
  };
  CHECK_FALSE(why_of("not json").empty());
  CHECK_FALSE(why_of(R"({"op":"subscribe","args":[]} trailing)").empty());
  CHECK(why_of("[1]") == "not an object");
  CHECK(why_of(R"({"args":[]})") == "missing op");
  CHECK(why_of(R"({"op":"dance","args":[{}]})") == "unknown op");
  CHECK(why_of(R"({"op":"subscribe","args":[]})") == "args must be a non-empty array");
  CHECK(why_of(R"({"op":"subscribe","args":[{"channel":"tickers"}]})") == "each arg needs channel and instId strings");
  CHECK(why_of(R"({"op":"unsubscribe","args":[{"channel":"a\"b","instId":"X"}]})") == "invalid channel or instId");
}

TEST_CASE("feed-sim request: an id that is not a plain name is dropped, not echoed") {
  ClientRequest r;
  std::string why;
  REQUIRE(parse_client_request(R"({"op":"unsubscribe","args":[{"channel":"c","instId":"i"}],"id":"a b"})", r, why));
  CHECK(r.id.empty());
}

TEST_CASE("feed-sim echo_escape: ASCII only, escaped, truncated") {
  CHECK(echo_escape("a\"b\\c\n") == R"(a\"b\\c\u000a)");
  CHECK(echo_escape("h\xc3\xa9") == "h??");
  CHECK(echo_escape("abcdef", 3) == "abc...");
}
#endif

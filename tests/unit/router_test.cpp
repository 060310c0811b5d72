#include <doctest/doctest.h>

#include <fanout/router.hpp>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using fanout::Routed;
using fanout::Router;
using Result = Router::Result;

namespace {

constexpr std::string_view k_ticker =
    R"({"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","last":"1","seqId":42}]})";

Router okx() {
  return Router(
      {.topic_template = "{arg.channel}:{arg.instId}", .key_path = "data.0.instId", .seq_path = "data.0.seqId"});
}

}  // namespace

TEST_CASE("router: OKX-like push gives topic, key and seq") {
  Router r = okx();
  Routed out;
  REQUIRE(r.route(k_ticker, out) == Result::routed);
  CHECK(out.topic == "tickers:BTC-USDT");
  REQUIRE(out.key);
  CHECK(*out.key == "BTC-USDT");
  REQUIRE(out.seq);
  CHECK(*out.seq == 42);
  CHECK(r.counters().routed == 1);
}

TEST_CASE("router: seq as a numeric string, and what is not a seq") {
  Router r({.topic_template = "{arg.channel}", .seq_path = "data.0.seqId"});
  Routed out;
  REQUIRE(r.route(R"({"arg":{"channel":"books"},"data":[{"seqId":"123456789012"}]})", out) == Result::routed);
  REQUIRE(out.seq);
  CHECK(*out.seq == 123456789012ULL);

  for (std::string_view bad : {R"("-5")", R"("12a")", R"("")", R"(-5)", R"(1.5)", R"("+1")", R"({"x":1})"}) {
    CAPTURE(bad);
    const std::string msg = std::string(R"({"arg":{"channel":"books"},"data":[{"seqId":)") + std::string(bad) + "}]}";
    REQUIRE(r.route(msg, out) == Result::routed);
    CHECK_FALSE(out.seq);
  }
  // Missing seq: still routed, seq cleared from the previous message.
  REQUIRE(r.route(R"({"arg":{"channel":"books"},"data":[{"seqId":7}]})", out) == Result::routed);
  CHECK(out.seq == 7u);
  REQUIRE(r.route(R"({"arg":{"channel":"books"},"data":[]})", out) == Result::routed);
  CHECK_FALSE(out.seq);
  // The largest uint64.
  REQUIRE(r.route(R"({"arg":{"channel":"books"},"data":[{"seqId":18446744073709551615}]})", out) == Result::routed);
  CHECK(out.seq == 18446744073709551615ULL);
}

TEST_CASE("router: acks and errors are control, pong is heartbeat, garbage is invalid") {
  Router r = okx();
  Routed out;
  CHECK(r.route(R"({"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"}})", out) == Result::control);
  CHECK(r.route(R"({"event":"error","code":"60012","msg":"Invalid request"})", out) == Result::control);
  CHECK(r.route(R"({"op":"login"})", out) == Result::control);
  CHECK(r.route("pong", out) == Result::heartbeat);
  CHECK(r.route("pong ", out) == Result::invalid);  // heartbeats match exactly
  CHECK(r.route("not json", out) == Result::invalid);
  CHECK(r.route(R"({"arg":{"channel":"tickers","instId":"x"}} trailing)", out) == Result::invalid);
  CHECK(r.route("", out) == Result::invalid);
  // "event" nested deeper is not a control field.
  CHECK(r.route(R"({"arg":{"channel":"a","instId":"b","event":1}})", out) == Result::routed);

  const auto c = r.counters();
  CHECK(c.control == 3);
  CHECK(c.heartbeat == 1);
  CHECK(c.invalid == 4);
  CHECK(c.routed == 1);
  CHECK(c.unmatched == 0);
}

TEST_CASE("router: custom control fields and heartbeats") {
  Router r({.topic_template = "{ch}", .control_fields = {"type"}, .heartbeat_texts = {"ping", "{\"hb\":1}"}});
  Routed out;
  CHECK(r.route(R"({"type":"ack"})", out) == Result::control);
  CHECK(r.route(R"({"event":"x","ch":"a"})", out) == Result::routed);  // "event" is no longer control
  CHECK(out.topic == "a");
  CHECK(r.route("ping", out) == Result::heartbeat);
  CHECK(r.route(R"({"hb":1})", out) == Result::heartbeat);  // checked before JSON parsing
  CHECK(r.route("pong", out) == Result::invalid);
}

TEST_CASE("router: non-JSON topic") {
  Router r({.topic_template = "{ch}", .non_json_topic = "raw"});
  Routed out;
  out.key = "stale";
  out.seq = 9;
  REQUIRE(r.route("hello", out) == Result::routed);
  CHECK(out.topic == "raw");
  CHECK_FALSE(out.key);
  CHECK_FALSE(out.seq);
  CHECK(r.route("pong", out) == Result::heartbeat);  // heartbeats still win
  CHECK(r.counters().invalid == 0);
}

TEST_CASE("router: non-JSON goes to default_topic when set, is counted, and seen by on_non_json") {
  std::vector<std::string> seen;
  Router r({.topic_template = "{ch}", .default_topic = "misc", .on_non_json = [&](std::string_view m) {
              seen.emplace_back(m);
            }});
  Routed out;
  REQUIRE(r.route("hello {", out) == Result::routed);
  CHECK(out.topic == "misc");
  CHECK(r.route(R"({"ch":"a"})", out) == Result::routed);
  CHECK(out.topic == "a");
  CHECK(seen == std::vector<std::string>{"hello {"});
  CHECK(r.counters().non_json == 1);
  CHECK(r.counters().invalid == 0);
  // non_json_topic wins over default_topic; without either, non-JSON is invalid but still counted.
  Router both({.topic_template = "{ch}", .default_topic = "misc", .non_json_topic = "raw"});
  REQUIRE(both.route("x", out) == Result::routed);
  CHECK(out.topic == "raw");
  Router none({.topic_template = "{ch}"});
  CHECK(none.route("x", out) == Result::invalid);
  CHECK(none.counters().non_json == 1);
  CHECK(none.counters().invalid == 1);
}

TEST_CASE("router: missing or non-scalar field is unmatched, or goes to the default topic") {
  Router r = okx();
  Routed out;
  CHECK(r.route(R"({"arg":{"channel":"tickers"}})", out) == Result::unmatched);
  CHECK(r.route(R"({"arg":{"channel":"tickers","instId":{"a":1}}})", out) == Result::unmatched);
  CHECK(r.route(R"({"arg":{"channel":"tickers","instId":[1]}})", out) == Result::unmatched);
  CHECK(r.route(R"({"arg":{"channel":"tickers","instId":null}})", out) == Result::unmatched);
  CHECK(r.route(R"({"arg":"tickers"})", out) == Result::unmatched);
  CHECK(r.route(R"([1,2,3])", out) == Result::unmatched);
  CHECK(r.route(R"("just a string")", out) == Result::unmatched);
  CHECK(r.counters().unmatched == 7);

  Router d({.topic_template = "{arg.channel}:{arg.instId}", .default_topic = "misc", .key_path = "k"});
  REQUIRE(d.route(R"({"arg":{"channel":"tickers"},"k":"K"})", out) == Result::routed);
  CHECK(out.topic == "misc");
  CHECK(out.key == "K");  // key and seq are still read on the default topic
  CHECK(d.counters().routed == 1);
  CHECK(d.counters().unmatched == 0);
}

TEST_CASE("router: numbers, booleans and literal text in the template") {
  Router r({.topic_template = "px/{a}/{b}/{c}/{d}/{e}-end"});
  Routed out;
  REQUIRE(r.route(R"({"a":7,"b":-3,"c":2.5,"d":true,"e":"s"})", out) == Result::routed);
  CHECK(out.topic == "px/7/-3/2.5/true/s-end");
  REQUIRE(r.route(R"({"a":18446744073709551615,"b":false,"c":0,"d":1e2,"e":""})", out) == Result::routed);
  CHECK(out.topic == "px/18446744073709551615/false/0/100/-end");

  Router lit({.topic_template = "everything"});
  REQUIRE(lit.route(R"({"x":1})", out) == Result::routed);
  CHECK(out.topic == "everything");

  Router adj({.topic_template = "{a}{b}"});
  REQUIRE(adj.route(R"({"a":"x","b":"y"})", out) == Result::routed);
  CHECK(out.topic == "xy");
}

TEST_CASE("router: array indexes, and digit keys in objects") {
  Router r({.topic_template = "{data.1.id}|{m.0}", .key_path = "data.0.n"});
  Routed out;
  REQUIRE(r.route(R"({"data":[{"id":"first","n":5},{"id":"second"}],"m":{"0":"zero"}})", out) == Result::routed);
  CHECK(out.topic == "second|zero");
  CHECK(out.key == "5");  // numeric keys are written as text
  CHECK(r.route(R"({"data":[{"id":"only"}],"m":{"0":"zero"}})", out) == Result::unmatched);  // index out of range
}

TEST_CASE("router: the output is reused across messages") {
  Router r = okx();
  Routed out;
  REQUIRE(r.route(k_ticker, out) == Result::routed);
  REQUIRE(r.route(R"({"arg":{"channel":"books","instId":"ETH-USDT"},"data":[{"instId":"ETH-USDT","seqId":"1"}]})",
                  out) == Result::routed);
  CHECK(out.topic == "books:ETH-USDT");
  CHECK(out.key == "ETH-USDT");
  CHECK(out.seq == 1u);
  REQUIRE(r.route(R"({"arg":{"channel":"books","instId":"ETH-USDT"}})", out) == Result::routed);
  CHECK_FALSE(out.key);
  CHECK_FALSE(out.seq);
}

TEST_CASE("router: a message larger than any before it parses") {
  Router r({.topic_template = "{t}"});
  Routed out;
  std::string big = R"({"t":"big","pad":")" + std::string(1 << 20, 'x') + R"("})";
  REQUIRE(r.route(big, out) == Result::routed);
  CHECK(out.topic == "big");
  REQUIRE(r.route(R"({"t":"small"})", out) == Result::routed);
  CHECK(out.topic == "small");
}

TEST_CASE("router: malformed templates and paths throw") {
  auto throws = [](Router::Options o) { CHECK_THROWS_AS(Router(std::move(o)), std::invalid_argument); };
  throws({.topic_template = ""});
  throws({.topic_template = "{arg.channel"});
  throws({.topic_template = "arg.channel}"});
  throws({.topic_template = "{a{b}}"});
  throws({.topic_template = "{}"});
  throws({.topic_template = "x:{}"});
  throws({.topic_template = "{a..b}"});
  throws({.topic_template = "{.a}"});
  throws({.topic_template = "{a.}"});
  throws({.topic_template = "{a}", .key_path = "data..x"});
  throws({.topic_template = "{a}", .key_path = "{data.0.instId}"});
  throws({.topic_template = "{a}", .seq_path = "."});
  CHECK_THROWS_WITH_AS(Router({.topic_template = "{arg.channel"}), doctest::Contains("unclosed"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Router({.topic_template = "a}"}), doctest::Contains("unmatched"), std::invalid_argument);
  CHECK_NOTHROW(Router({.topic_template = "{a}"}));
  CHECK_THROWS_AS(Router(Router::Callback{}), std::invalid_argument);
}

TEST_CASE("router: callback replaces the built-in rule") {
  Router r(Router::Callback([](std::string_view m) -> std::optional<Routed> {
    if (m.starts_with("drop")) return std::nullopt;
    return Routed{.topic = "cb:" + std::string(m), .key = "k", .seq = 3};
  }));
  Routed out;
  REQUIRE(r.route("hello", out) == Result::routed);
  CHECK(out.topic == "cb:hello");
  CHECK(out.key == "k");
  CHECK(out.seq == 3u);
  CHECK(r.route("drop me", out) == Result::unmatched);
  // The callback sees everything, heartbeats included.
  REQUIRE(r.route("pong", out) == Result::routed);
  CHECK(out.topic == "cb:pong");
  const auto c = r.counters();
  CHECK(c.routed == 2);
  CHECK(c.unmatched == 1);
}

TEST_CASE("router: default router, moves, and counters from another thread") {
  Router r;  // "{arg.channel}:{arg.instId}"
  Routed out;
  REQUIRE(r.route(k_ticker, out) == Result::routed);
  CHECK(out.topic == "tickers:BTC-USDT");
  CHECK_FALSE(out.key);

  Router moved(std::move(r));
  REQUIRE(moved.route(k_ticker, out) == Result::routed);
  CHECK(moved.counters().routed == 2);

  Router::Counters seen;
  std::thread t([&] { seen = moved.counters(); });
  t.join();
  CHECK(seen.routed == 2);
}

TEST_CASE("router: a template that expands to nothing is unmatched, or the default topic (found by router_fuzzer)") {
  fanout::Routed out;
  Router r({.topic_template = "{stream}"});
  CHECK(r.route(R"({"stream":"","a":{}})", out) == Router::Result::unmatched);
  Router d({.topic_template = "{stream}", .default_topic = "other"});
  REQUIRE(d.route(R"({"stream":""})", out) == Router::Result::routed);
  CHECK(out.topic == "other");
}

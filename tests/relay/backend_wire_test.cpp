// The backend proxy's JSON bodies and the reading of the backend's answers (examples/relay/backend_wire).
#include <doctest/doctest.h>

#include "backend_wire.hpp"

using namespace relay;

namespace {
fanout::ConnectRequest request() {
  fanout::ConnectRequest r;
  r.remote_address = "1.2.3.4";
  r.path = "/ws";
  r.query = "room=1&x=\"q\"";
  r.headers = {{"Host", "h"},
               {"cookie", "sid=abc; theme=\"dark\""},
               {"User-Agent", "ua"},
               {"Cookie", "sid=second; lang=en"},
               {"X-Secret", "s3"}};
  return r;
}
}  // namespace

TEST_CASE("connect body: selected headers under the configured names, cookies parsed, the rest left out") {
  const auto body = wire::connect_body(request(), "n1-1f", {"Cookie", "user-agent", "Authorization"});
  CHECK(body == R"({"client":"n1-1f","remote":"1.2.3.4","path":"/ws","query":"room=1&x=\"q\"",)"
                R"("headers":{"Cookie":"sid=abc; theme=\"dark\"; sid=second; lang=en","user-agent":"ua"},)"
                R"("cookies":{"sid":"abc","theme":"dark","lang":"en"}})");
}

TEST_CASE("connect body: no cookies without the Cookie header forwarded, a verified token's user") {
  auto r = request();
  fanout::Identity id;
  id.user = "alice";
  r.identity = id;
  const auto body = wire::connect_body(r, "7", {"User-Agent"});
  CHECK(body == R"({"client":"7","remote":"1.2.3.4","path":"/ws","query":"room=1&x=\"q\"","user":"alice",)"
                R"("headers":{"User-Agent":"ua"}})");
}

TEST_CASE("message, rpc and disconnect bodies") {
  CHECK(wire::message_body("c", "u", "he said \"hi\"\n", false) ==
        R"({"client":"c","user":"u","data":"he said \"hi\"\n"})");
  CHECK(wire::message_body("c", "", std::string_view("\x00\xff\x10", 3), true) ==
        R"({"client":"c","user":"","binary":true,"data":"AP8Q"})");
  CHECK(wire::rpc_body("c", "u", "7", "m", R"({"a":1})") ==
        R"({"client":"c","user":"u","id":7,"method":"m","data":{"a":1}})");
  CHECK(wire::rpc_body("c", "u", "", "", "") == R"({"client":"c","user":"u","id":null,"method":"","data":null})");
  CHECK(wire::disconnect_body("c", "u") == R"({"client":"c","user":"u"})");
}

TEST_CASE("connect answers") {
  std::string why;
  auto a = wire::parse_connect_answer(R"({"accept":true,"user":"u1","topics":["room:1","b"]})", {}, why);
  REQUIRE(a);
  CHECK(a->accept);
  CHECK(a->user_id == "u1");
  CHECK(a->topics == std::vector<std::string>{"room:1", "b"});

  a = wire::parse_connect_answer(R"({"accept":true})", {}, why);
  REQUIRE(a);
  CHECK((a->accept && a->user_id.empty() && a->topics.empty()));

  a = wire::parse_connect_answer(R"({"accept":false,"status":401,"reason":"who\nare you"})", {}, why);
  REQUIRE(a);
  CHECK(!a->accept);
  CHECK(a->http_status == 401);
  CHECK(a->reason == "who are you");  // no control characters reach the HTTP answer

  a = wire::parse_connect_answer(R"({"accept":false})", {}, why);
  REQUIRE(a);
  CHECK(a->http_status == 403);

  for (const char* bad : {"", "[]", "{", R"({"user":"u"})", R"({"accept":"yes"})", R"({"accept":false,"status":200})",
                          R"({"accept":false,"status":"403"})", R"({"accept":true,"topics":"a"})",
                          R"({"accept":true,"topics":[1]})", R"({"accept":true,"user":5})", "{\"accept\":true} x"}) {
    CAPTURE(bad);
    CHECK(!wire::parse_connect_answer(bad, {}, why));
    CHECK(!why.empty());
  }
  wire::AnswerLimits small;
  small.max_user_bytes = 5;
  small.max_topics = 1;
  CHECK(!wire::parse_connect_answer(R"({"accept":true,"user":"abcdef"})", small, why));
  CHECK(!wire::parse_connect_answer(R"({"accept":true,"topics":["a","b"]})", small, why));
}

TEST_CASE("rpc answers: data byte for byte, errors with their codes") {
  std::string why;
  for (const char* data :
       {R"({"a": [1, 2.50, "x\u00e9"],  "b":{}})", R"([ 1,2 ])", R"("s\"")", "12.50", "null", "true"}) {
    CAPTURE(data);
    const std::string body = std::string(R"({"x":1, "data":)") + data + " }";
    auto a = wire::parse_rpc_answer(body, why);
    REQUIRE(a);
    CHECK(a->ok);
    CHECK(a->data == data);
  }
  auto a = wire::parse_rpc_answer(R"({"error":{"code":4100,"msg":"nope"}})", why);
  REQUIRE(a);
  CHECK((!a->ok && a->code == 4100 && a->msg == "nope"));
  a = wire::parse_rpc_answer(R"({"error":{"code":1000,"msg":"x"}})", why);
  REQUIRE(a);
  CHECK(a->code == 4500);
  for (const char* bad : {"", "1", R"({"result":1})", R"({"error":{"code":"x","msg":"m"}})", R"({"data":})"}) {
    CAPTURE(bad);
    CHECK(!wire::parse_rpc_answer(bad, why));
  }
}

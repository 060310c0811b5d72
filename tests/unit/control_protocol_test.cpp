#include <doctest/doctest.h>

#include <fanout/detail/control_protocol.hpp>

using namespace fanout::detail;

TEST_CASE("subscribe with topics") {
  auto p = parse_control(R"({"op":"subscribe","args":["a","b.c"],"id":7})");
  REQUIRE(p.ok);
  CHECK(p.request.op == ControlRequest::Op::subscribe);
  CHECK(p.request.args == std::vector<std::string>{"a", "b.c"});
}

TEST_CASE("args before op, ping, unsubscribe") {
  CHECK(parse_control(R"({"args":["x"],"op":"unsubscribe"})").request.op == ControlRequest::Op::unsubscribe);
  CHECK(parse_control(R"({"op":"ping"})").request.op == ControlRequest::Op::ping);
}

TEST_CASE("errors say what is wrong") {
  CHECK(parse_control("not json").error == ControlError::bad_json);
  CHECK(parse_control(R"({"op":"subscribe"} trailing)").error == ControlError::bad_json);
  CHECK(parse_control(R"([1,2])").error == ControlError::bad_json);
  CHECK(parse_control(R"({"op":"dance"})").error == ControlError::unknown_op);
  CHECK(parse_control(R"({"args":["a"]})").error == ControlError::unknown_op);
  CHECK(parse_control(R"({"op":"subscribe","args":[1]})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"subscribe","args":[]})").error == ControlError::bad_args);
}

TEST_CASE("subscribe with since and snapshot") {
  auto p = parse_control(
      R"({"op":"subscribe","args":["a","b","c"],"since":{"a":120,"b":{"seq":7,"epoch":99}},"snapshot":true})");
  REQUIRE(p.ok);
  REQUIRE(p.request.since.size() == 2);
  CHECK(p.request.since_of("a")->seq == 120);
  CHECK(p.request.since_of("a")->epoch == 0);
  CHECK(p.request.since_of("b")->seq == 7);
  CHECK(p.request.since_of("b")->epoch == 99);
  CHECK(p.request.since_of("c") == nullptr);
  CHECK(p.request.snapshot);
  for (const char* bad :
       {R"({"op":"subscribe","args":["a"],"since":[1]})", R"({"op":"subscribe","args":["a"],"since":{"a":-1}})",
        R"({"op":"subscribe","args":["a"],"since":{"a":"x"}})",
        R"({"op":"subscribe","args":["a"],"since":{"a":{"epoch":1}}})",
        R"({"op":"subscribe","args":["a"],"snapshot":1})"}) {
    auto e = parse_control(bad);
    CHECK_FALSE(e.ok);
    CHECK(e.error == ControlError::bad_args);
  }
}

TEST_CASE("auth and refresh carry a token; subscribe may carry one") {
  auto a = parse_control(R"({"op":"auth","token":"x.y.z"})");
  REQUIRE(a.ok);
  CHECK(a.request.op == ControlRequest::Op::auth);
  CHECK(a.request.token == "x.y.z");
  CHECK(parse_control(R"({"op":"refresh","token":"t"})").request.op == ControlRequest::Op::refresh);
  CHECK(parse_control(R"({"op":"auth"})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"refresh","token":""})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"auth","token":5})").error == ControlError::bad_args);
  auto s = parse_control(R"({"op":"subscribe","args":["private.1"],"token":"abc"})");
  REQUIRE(s.ok);
  CHECK(s.request.token == "abc");
}

TEST_CASE("a since past 64 bits is bad arguments (4002), a malformed number is bad JSON (4000)") {
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"since":{"t":18446744073709551616}})").error ==
        ControlError::bad_args);
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"since":{"t":-1}})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"since":{"t":1.5}})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"since":{"t":012}})").error == ControlError::bad_json);
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"since":{"t":1.}})").error == ControlError::bad_json);
  CHECK(parse_control(R"({"op":"subscribe","args":["1.e\"9"],"since":{"t":18446744073709551616}})").error ==
        ControlError::bad_args);
  auto max = parse_control(R"({"op":"subscribe","args":["t"],"since":{"t":18446744073709551615}})");
  REQUIRE(max.ok);
  CHECK(max.request.since.at(0).seq == UINT64_MAX);
}

TEST_CASE("what is a control op: a JSON object whose op is the protocol's, valid or not") {
  for (const char* control : {R"({"op":"ping"})", R"({"op":"subscribe"})", R"({"op":"auth"})",
                              R"({"op":"rpc","id":{}})", R"({"since":5,"op":"subscribe","args":["a"]})",
                              R"({"op":"subscribe","args":["t"],"since":{"t":18446744073709551616}})"})
    CHECK_MESSAGE(parse_control(control).control, control);
  for (const char* app : {"hello", "", "[1]", "42", R"({"op":"chat","args":5})", R"({"op":5})", R"({"type":"x"})",
                          R"({"op":"PING"})", R"({"op":"ping"} x)", R"({"op":"chat","n":18446744073709551616})"})
    CHECK_FALSE_MESSAGE(parse_control(app).control, app);
}

TEST_CASE("rpc: id as JSON text, data as the client wrote it, method") {
  auto p = parse_control(R"({"op":"rpc","id":7,"method":"get","data": { "a" : [1, 2.50] } })");
  REQUIRE(p.ok);
  CHECK(p.request.op == ControlRequest::Op::rpc);
  CHECK(p.request.id == "7");
  CHECK(p.request.data == R"({ "a" : [1, 2.50] })");
  CHECK(p.request.method == "get");
  auto s = parse_control(R"({"data":"x\u00e9","id":"a\"b","op":"rpc","method":5})");
  REQUIRE(s.ok);
  CHECK(s.request.id == R"("a\"b")");
  CHECK(s.request.data == R"("x\u00e9")");
  CHECK(s.request.method.empty());
  auto none = parse_control(R"({"op":"rpc","id":-1.5})");
  REQUIRE(none.ok);
  CHECK(none.request.data == "null");
  CHECK(parse_control(R"({"op":"rpc","id":true,"data":1})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"rpc","id":null})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"rpc","data":1})").error == ControlError::bad_args);
  const std::string long_id = R"({"op":"rpc","id":")" + std::string(300, 'x') + R"("})";
  auto l = parse_control(long_id);
  CHECK(l.error == ControlError::bad_args);
  CHECK(l.request.id.empty());  // not echoed
  CHECK(l.control);
}

TEST_CASE("presence: one topic in arg (or args); subscribe may ask for join/leave events") {
  auto p = parse_control(R"({"op":"presence","arg":"room"})");
  REQUIRE(p.ok);
  CHECK(p.request.op == ControlRequest::Op::presence);
  CHECK(p.request.args == std::vector<std::string>{"room"});
  CHECK(parse_control(R"({"op":"presence","args":["room"]})").ok);
  CHECK(parse_control(R"({"op":"presence"})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"presence","args":["a","b"]})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"presence","arg":7})").error == ControlError::bad_args);
  auto s = parse_control(R"({"op":"subscribe","args":["room"],"presence":true})");
  REQUIRE(s.ok);
  CHECK(s.request.presence);
  CHECK_FALSE(parse_control(R"({"op":"subscribe","args":["room"]})").request.presence);
  CHECK(parse_control(R"({"op":"subscribe","args":["room"],"presence":1})").error == ControlError::bad_args);
  // "arg" names a topic for presence only: a subscribe still needs "args".
  CHECK(parse_control(R"({"op":"subscribe","arg":"room"})").error == ControlError::bad_args);
}

TEST_CASE("subscribe options of issue 15: delta and drop_notices") {
  auto p = parse_control(R"({"op":"subscribe","args":["t"],"delta":"fossil","drop_notices":true})");
  CHECK(p.ok);
  CHECK(p.request.delta);
  CHECK(p.request.drop_notices);
  CHECK_FALSE(parse_control(R"({"op":"subscribe","args":["t"]})").request.delta);
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"delta":"xdelta"})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"delta":true})").error == ControlError::bad_args);
  CHECK(parse_control(R"({"op":"subscribe","args":["t"],"drop_notices":1})").error == ControlError::bad_args);
}

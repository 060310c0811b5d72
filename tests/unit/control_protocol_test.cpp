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

TEST_CASE("json_string escapes") { CHECK(json_string("a\"b\\c\n") == R"("a\"b\\c\n")"); }

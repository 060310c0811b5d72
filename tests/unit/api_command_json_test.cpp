// to_json(ApiCommand): what RedisGatewayLink forwards reads back to the same command.
#include <doctest/doctest.h>

#include <fanout/api_commands.hpp>

using Kind = fanout::ApiCommand::Kind;

namespace {
fanout::ApiCommand round_trip(std::string_view json) {
  auto first = fanout::parse_api_command(json);
  REQUIRE(first.command);
  const std::string text = fanout::to_json(*first.command);
  auto again = fanout::parse_api_command(text);
  INFO(text);
  REQUIRE(again.command);
  CHECK(again.command->kind == first.command->kind);
  CHECK(again.command->topic == first.command->topic);
  CHECK(again.command->user == first.command->user);
  CHECK(again.command->client == first.command->client);
  CHECK(again.command->users == first.command->users);
  CHECK(again.command->data == first.command->data);
  CHECK(again.command->exclude == first.command->exclude);
  CHECK(again.command->code == first.command->code);
  CHECK(again.command->reason == first.command->reason);
  CHECK(again.command->list_clients == first.command->list_clients);
  return *again.command;
}
}  // namespace

TEST_CASE("api command json: every kind reads back the same, data byte for byte") {
  CHECK(round_trip(R"({"cmd":"publish","topic":"t","data":{"px": 1.10,"s":"a\"b"},"exclude":["n1-1","n2-2"]})").data ==
        R"({"px": 1.10,"s":"a\"b"})");
  CHECK(round_trip(R"({"cmd":"send_to_user","user":"al\u00e9","data":"hi \"x\"\n."})").data == "hi \"x\"\n.");
  CHECK(round_trip(R"({"cmd":"broadcast","data":42})").data == "42");
  CHECK(round_trip(R"({"cmd":"send_to_client","client":"n2-1f","data":""})").data.empty());
  round_trip(R"({"cmd":"join","client":"n2-1f","topic":"room:1"})");
  round_trip(R"({"cmd":"leave","client":"n2-1f","topic":"room:1"})");
  CHECK(round_trip(R"({"cmd":"disconnect","user":"u","code":4001,"reason":"bye"})").code == 4001);
  round_trip(R"({"cmd":"bind","client":"n1-2","user":"u"})");
  round_trip(R"({"cmd":"unbind","client":"n1-2"})");
  round_trip(R"({"cmd":"online","users":["a","b"]})");
  round_trip(R"({"cmd":"presence","topic":"t","clients":true})");
  round_trip(R"({"cmd":"info"})");
}

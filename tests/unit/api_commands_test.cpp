#include <doctest/doctest.h>

#include <fanout/api_commands.hpp>
#include <fanout/gateway.hpp>
#include <fanout/hub.hpp>
#include <fanout/runtime.hpp>
#include <fanout/server_api.hpp>

#include <string>

using fanout::ApiCommand;
using fanout::parse_api_batch;
using fanout::parse_api_command;
using Kind = ApiCommand::Kind;

TEST_CASE("api commands: names both ways") {
  for (auto k : {Kind::publish, Kind::broadcast, Kind::send_to_user, Kind::send_to_client, Kind::join, Kind::leave,
                 Kind::disconnect, Kind::bind, Kind::unbind, Kind::presence, Kind::online, Kind::info})
    CHECK(ApiCommand::kind_by_name(ApiCommand::name(k)) == k);
  CHECK(!ApiCommand::kind_by_name("batch"));
  CHECK(!ApiCommand::kind_by_name("Publish"));
  CHECK(ApiCommand::is_action(Kind::publish));
  CHECK(!ApiCommand::is_action(Kind::info));
}

TEST_CASE("api commands: data is sent as its JSON text, a string as its content") {
  SUBCASE("an object, byte for byte (spacing and number spelling kept)") {
    const auto p = parse_api_command(R"({"cmd":"publish","topic":"t","data": {"px": 1.10, "q":[1e2, "a\"b"]} })");
    REQUIRE(p.command);
    CHECK(p.command->kind == Kind::publish);
    CHECK(p.command->topic == "t");
    CHECK(p.command->data == R"({"px": 1.10, "q":[1e2, "a\"b"]})");
  }
  SUBCASE("a string, unescaped") {
    const auto p = parse_api_command(Kind::send_to_user, R"({"user":"alice","data":"hi \"there\"\n\u00e9"})");
    REQUIRE(p.command);
    CHECK(p.command->user == "alice");
    CHECK(p.command->data == "hi \"there\"\n\xc3\xa9");
  }
  SUBCASE("an array, a number, true, null") {
    CHECK(parse_api_command(Kind::broadcast, R"({"data":[1, 2]})").command->data == "[1, 2]");
    CHECK(parse_api_command(Kind::broadcast, R"({"data": 42 })").command->data == "42");
    CHECK(parse_api_command(Kind::broadcast, R"({"data":true,"exclude":["n1-1"]})").command->data == "true");
    CHECK(parse_api_command(Kind::broadcast, R"({"data":null})").command->data == "null");
    CHECK(parse_api_command(Kind::broadcast, R"({"data":""})").command->data.empty());
    CHECK(parse_api_command(Kind::broadcast, R"({"data":" padded\n "})").command->data == " padded\n ");
  }
  SUBCASE("a number past 64 bits is refused, with a reason") {
    const auto p = parse_api_command(Kind::broadcast, R"({"data":{"id":123456789012345678901234567890}})");
    CHECK(!p.command);
    CHECK(p.error.find("out of range") != std::string::npos);
    CHECK(parse_api_command(Kind::broadcast, R"({"data":{"id":18446744073709551615}})").command);
  }
}

TEST_CASE("api commands: fields each kind reads") {
  auto p = parse_api_command(R"({"cmd":"publish","topic":"room:1","data":"x","exclude":["n1-a","n1-b"],"id":7})");
  REQUIRE(p.command);
  CHECK(p.command->exclude == std::vector<std::string>{"n1-a", "n1-b"});
  p = parse_api_command(Kind::disconnect, R"({"user":"bob","code":4000,"reason":"bye"})");
  REQUIRE(p.command);
  CHECK(p.command->code == 4000);
  CHECK(p.command->reason == "bye");
  CHECK(p.command->client.empty());
  p = parse_api_command(Kind::disconnect, R"({"client":"n1-1f"})");
  REQUIRE(p.command);
  CHECK(p.command->code == 1000);
  p = parse_api_command(Kind::bind, R"({"client":"n1-1f","user":"alice"})");
  REQUIRE(p.command);
  CHECK(p.command->kind == Kind::bind);
  p = parse_api_command(Kind::online, R"({"users":["a","b"]})");
  REQUIRE(p.command);
  CHECK(p.command->users.size() == 2);
  CHECK(parse_api_command(Kind::info, "{}").command);
  p = parse_api_command(Kind::presence, R"({"topic":"t","clients":true})");
  REQUIRE(p.command);
  CHECK(p.command->list_clients);
}

TEST_CASE("api commands: malformed ones say what is wrong") {
  const auto error = [](Kind k, std::string_view json) {
    const auto p = parse_api_command(k, json);
    CHECK(!p.command);
    return p.error;
  };
  CHECK(error(Kind::publish, R"({"topic":"t"})") == R"(missing field "data")");
  CHECK(error(Kind::publish, R"({"data":"t"})") == R"(missing field "topic")");
  CHECK(error(Kind::publish, R"({"topic":"","data":1})") == R"("topic" must not be empty)");
  CHECK(error(Kind::publish, R"({"topic":5,"data":1})") == R"("topic" must be a string)");
  CHECK(error(Kind::publish, R"({"topic":"t","data":1,"exclude":"n1-1"})") ==
        R"("exclude" must be an array of strings)");
  CHECK(error(Kind::publish, R"({"topic":"t","data":1,"exclude":[1]})") == R"("exclude" must be an array of strings)");
  CHECK(error(Kind::send_to_user, R"({"data":1})") == R"(missing field "user")");
  CHECK(error(Kind::send_to_client, R"({"data":1})") == R"(missing field "client")");
  CHECK(error(Kind::join, R"({"client":"c"})") == R"(missing field "topic")");
  CHECK(error(Kind::disconnect, R"({"code":1000})") == R"(missing field "client" or "user")");
  CHECK(error(Kind::disconnect, R"({"client":"c","code":1006})") ==
        R"("code" must be 1000 or 3000-4999 (RFC 6455 7.4))");
  CHECK(error(Kind::disconnect, R"({"client":"c","code":-1})") == R"("code" must be 1000 or 3000-4999 (RFC 6455 7.4))");
  CHECK(error(Kind::disconnect, R"({"client":"c","reason":")" + std::string(124, 'r') + "\"}")
            .starts_with(R"("reason" must be at most 123 bytes)"));
  CHECK(error(Kind::bind, R"({"client":"c"})") == R"(missing field "user")");
  CHECK(error(Kind::online, R"({})") == R"(missing field "user" or "users")");
  CHECK(error(Kind::publish, "[]") == "the body must be a JSON object");
  CHECK(error(Kind::publish, "").starts_with("malformed JSON"));
  CHECK(error(Kind::publish, R"({"topic":"t","data":1)").starts_with("malformed JSON"));
  CHECK(error(Kind::publish, R"({"topic":"t","data":1} x)").starts_with("malformed JSON"));
  CHECK(error(Kind::publish, R"({"topic":"t","data":1,"junk":[1,,2]})").starts_with("malformed JSON"));
  CHECK(error(Kind::publish, "{\"topic\":\"t\xff\",\"data\":1}").starts_with("malformed JSON"));
  // The JSON form names its command.
  CHECK(parse_api_command(R"({"topic":"t","data":1})").error == R"(missing field "cmd")");
  CHECK(parse_api_command(R"({"cmd":"explode"})").error == R"(unknown cmd "explode")");
  CHECK(parse_api_command(R"({"cmd":"batch","commands":[]})").batch);
}

TEST_CASE("api commands: a batch, each command on its own") {
  const auto b = parse_api_batch(
      R"({"commands":[{"cmd":"publish","topic":"t","data":{"a":[1,{"b":2}]}},{"cmd":"publish","topic":5,"data":{"deep":[[1]]},"more":{"x":1}},)"
      R"("nope",{"cmd":"batch","commands":[]},{"cmd":"send_to_user","user":"u","data":"x"}]})",
      10);
  REQUIRE(b.status == 200);
  REQUIRE(b.commands.size() == 5);
  REQUIRE(b.commands[0].command);
  CHECK(b.commands[0].command->data == R"({"a":[1,{"b":2}]})");
  CHECK(b.commands[1].error == R"("topic" must be a string)");
  CHECK(b.commands[2].error == "a command must be a JSON object");
  CHECK(b.commands[3].error == "a batch holds commands, not batches");
  REQUIRE(b.commands[4].command);
  CHECK(b.commands[4].command->user == "u");
  CHECK(b.commands[4].command->data == "x");

  CHECK(parse_api_batch(R"({"commands":[{},{},{}]})", 2).status == 413);
  CHECK(parse_api_batch(R"({"commands":[{},{}]})", 2).status == 200);
  CHECK(parse_api_batch(R"({"cmd":"batch"})", 2).error == R"(missing field "commands")");
  CHECK(parse_api_batch(R"({"commands":{}})", 2).status == 400);
  CHECK(parse_api_batch(R"({"commands":[)", 2).status == 400);
}

TEST_CASE("api executor: answers in JSON, 400 for what the gateway would refuse silently") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt, {.topics = {"room"}});
  fanout::Gateway gw(rt, hub, {.node = "u1"});
  const fanout::ApiExecutor api(gw, hub, {.max_batch = 3});
  auto r = api.execute_json(R"({"cmd":"send_to_user","user":"nobody","data":"x"})");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"delivered":0})");
  r = api.execute_json(R"({"cmd":"join","client":"u1-1","topic":"room"})");
  CHECK(r.body == R"({"ok":false})");
  r = api.execute_json(R"({"cmd":"publish","topic":"bad topic","data":1})");
  CHECK(r.status == 400);
  CHECK(r.body.find("invalid \\\"topic\\\"") != std::string::npos);
  r = api.execute_json(R"({"cmd":"bind","client":"u1-1","user":")" + std::string(200, 'u') + "\"}");
  CHECK(r.status == 400);
  r = api.execute_json(R"({"cmd":"info"})");
  CHECK(r.body.starts_with(R"({"node":"u1","connections":0,"users":0,)"));
  r = api.execute_json(R"({"cmd":"online","users":["a","b"]})");
  CHECK(r.body == R"({"online":{"a":false,"b":false}})");
  r = api.execute_json(R"({"cmd":"presence","topic":"room","clients":true})");
  CHECK(r.body == R"({"topic":"room","connection_count":0,"user_count":0,"truncated":false,"users":[],"clients":[]})");
  r = api.execute_json(R"({"cmd":"batch","commands":[{"cmd":"publish","topic":"room","data":"x"},{"cmd":"nope"}]})");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"results":[{"delivered":0},{"error":"unknown cmd \"nope\"","status":400}]})");
  r = api.execute_batch(R"({"commands":[{},{},{},{}]})");
  CHECK(r.status == 413);
  r = api.execute_json("{nope");
  CHECK(r.status == 400);
  CHECK(hub.last_seq("room") == 1);  // the batch's publish, and nothing else
}

TEST_CASE("server api: the key as Bearer or X-API-Key, compared whole") {
  fanout::Runtime rt({.shards = 1});
  fanout::Hub hub(rt);
  fanout::Gateway gw(rt, hub);
  const fanout::ServerApi api(gw, hub, {.keys = {"first-key-0123456789", "second-key-0123456789"}});
  const auto authorized = [&](std::string_view headers) {
    fanout::HttpRequest req(8192);
    const std::string text = "GET /api/info HTTP/1.1\r\nHost: x\r\n" + std::string(headers) + "\r\n";
    std::size_t consumed = 0;
    REQUIRE(req.feed(std::as_bytes(std::span(text.data(), text.size())), consumed) ==
            fanout::HttpRequest::Status::complete);
    return api.authorized(req);
  };
  CHECK(authorized("Authorization: Bearer first-key-0123456789\r\n"));
  CHECK(authorized("authorization: bearer   second-key-0123456789\r\n"));
  CHECK(authorized("X-API-Key: second-key-0123456789\r\n"));
  CHECK_FALSE(authorized(""));
  CHECK_FALSE(authorized("Authorization: Bearer first-key-012345678\r\n"));
  CHECK_FALSE(authorized("Authorization: Bearer first-key-01234567890\r\n"));
  CHECK_FALSE(authorized("Authorization: Basic first-key-0123456789\r\n"));
  CHECK_FALSE(authorized("Authorization: Bearer \r\n"));
  CHECK_FALSE(authorized("X-API-Key: \r\n"));
  fanout::ServerApi rotated(gw, hub, {.keys = {"first-key-0123456789"}});
  rotated.set_keys({"third-key-0123456789"});
  CHECK(rotated.key_count() == 1);
  {
    fanout::HttpRequest req(8192);
    const std::string text = "GET /api/info HTTP/1.1\r\nX-API-Key: third-key-0123456789\r\n\r\n";
    std::size_t consumed = 0;
    REQUIRE(req.feed(std::as_bytes(std::span(text.data(), text.size())), consumed) ==
            fanout::HttpRequest::Status::complete);
    CHECK(rotated.authorized(req));
    CHECK_FALSE(api.authorized(req));
  }
  const fanout::ServerApi closed(gw, hub, {});
  fanout::HttpRequest req(8192);
  CHECK_FALSE(closed.authorized(req));  // no keys: nobody
  const auto routes = api.routes();
  CHECK(routes.back().prefix);
  CHECK(routes.front().path == "/api/publish");
  CHECK(routes.front().serves("POST"));
  CHECK_FALSE(routes.front().serves("GET"));
}

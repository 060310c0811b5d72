// fanout/api_commands.hpp — the server API's commands as data: a JSON command object in, a Gateway
// call, a JSON result out. The HTTP API (server_api.hpp) and a command channel over Redis are two
// transports for the same commands; docs/server-api.md lists every command, field and answer.
//
//   fanout::ApiExecutor api(gateway, hub);
//   auto r = api.execute_json(R"({"cmd":"send_to_user","user":"alice","data":{"type":"hello"}})");
//   // r.status == 200, r.body == R"({"delivered":2})"   (alice has two connections)
//
// `data` is what clients receive, as one text message: a JSON string is sent as its content
// (unescaped, without quotes); any other JSON value (object, array, number, ...) as its JSON text,
// byte for byte as it appears in the command.
//
// Thread safety: parse_api_command and every ApiExecutor member may be called from any thread at
// once (the Gateway does the posting to shards); the executor's Gateway and Hub must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/export.hpp"

namespace fanout {

class Gateway;
class Hub;

/// One command, parsed. Which fields a kind reads is in docs/server-api.md; the rest stay empty.
struct FANOUT_API ApiCommand {
  enum class Kind : std::uint8_t {
    publish,         // topic, data, exclude
    broadcast,       // data, exclude
    send_to_user,    // user, data
    send_to_client,  // client, data
    join,            // client, topic
    leave,           // client, topic
    disconnect,      // client or user, code, reason
    bind,            // client, user
    unbind,          // client
    presence,        // topic, clients (also list client ids)
    online,          // user, or users
    info,            // nothing
  };

  Kind kind = Kind::publish;
  std::string topic{};
  std::string user{};
  std::string client{};
  std::vector<std::string> users{};    // online: several users at once
  std::string data{};                  // what the clients receive (see the header comment)
  std::vector<std::string> exclude{};  // client ids left out of a publish or broadcast
  std::uint16_t code = 1000;           // disconnect: the close code (1000, or 3000-4999)
  std::string reason{};                // disconnect: the close reason (at most 123 bytes)
  bool list_clients = false;           // presence: also the client ids in the topic

  /// "publish", "send_to_user", ...: the name in {"cmd":..} and in the URL (/api/<name>).
  static const char* name(Kind kind) noexcept;
  static std::optional<Kind> kind_by_name(std::string_view name) noexcept;
  /// Changes the cluster's state (sends, joins, closes), as opposed to a query about this node.
  static bool is_action(Kind kind) noexcept;
};

/// A command, or why the JSON is not one (a message naming the field, for a 400).
struct FANOUT_API ApiParse {
  std::optional<ApiCommand> command;
  std::string error{};
  bool batch = false;  // {"cmd":"batch",..}: not a command, parse it with parse_api_batch
};

/// {"cmd":"publish","topic":"t","data":...}: one command object; unknown fields are ignored.
FANOUT_API ApiParse parse_api_command(std::string_view json);
/// The HTTP form: the command named by the URL, its fields in the object `json` ("cmd" ignored).
FANOUT_API ApiParse parse_api_command(ApiCommand::Kind kind, std::string_view json);

/// A batch, parsed: each command on its own (one malformed command does not spoil the others).
struct FANOUT_API ApiBatchParse {
  int status = 200;  // 400: not {"commands":[...]}; 413: more than max_commands (then `commands` is empty)
  std::string error{};
  std::vector<ApiParse> commands{};
};

/// {"commands":[{"cmd":"publish",..},..]} ("cmd":"batch" beside it is allowed). A command named
/// "batch" inside is malformed: batches do not nest.
FANOUT_API ApiBatchParse parse_api_batch(std::string_view json, std::size_t max_commands);

/// What a command answered: an HTTP status and a JSON object.
struct FANOUT_API ApiResult {
  int status = 200;    // 200; 400 bad command; 413 batch over max_batch
  std::string body{};  // {"delivered":N}, {"ok":true}, ... or {"error":"..."}
  bool ok() const noexcept { return status == 200; }
};

class FANOUT_API ApiExecutor {
 public:
  struct Options {
    std::size_t max_batch = 1000;  // commands in one batch; more: 413 and none is executed
  };

  ApiExecutor(Gateway& gateway, Hub& hub);
  ApiExecutor(Gateway& gateway, Hub& hub, Options options);

  const Options& options() const noexcept { return options_; }

  /// Runs one command against the gateway. Addressing nobody (an unknown user, client or topic) is
  /// not an error: 200 with {"delivered":0} (or {"ok":false} for join, leave and bind).
  ApiResult execute(const ApiCommand& command) const;
  /// One command object (with "cmd"), or a batch: {"cmd":"batch","commands":[...]}.
  ApiResult execute_json(std::string_view json) const;
  /// {"commands":[{"cmd":..},..]}: each executed in order, answered {"results":[..]} one per command
  /// ({"error":..,"status":400} for one that is malformed; the others still run). 400 when the
  /// body itself is malformed, 413 past max_batch: then nothing runs.
  ApiResult execute_batch(std::string_view json) const;

 private:
  Gateway& gateway_;
  Hub& hub_;
  Options options_;
};

}  // namespace fanout

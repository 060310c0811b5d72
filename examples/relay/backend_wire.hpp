// The backend proxy's wire format (docs/relay.md, "Backend proxy"): the JSON bodies the relay POSTs
// to {url}/connect, /message, /rpc and /disconnect, and the reading of the backend's answers. No I/O
// here: backend_pool.hpp carries the bodies, backend_proxy.hpp decides what an answer does.
#pragma once

#include <fanout/connect.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relay::wire {

/// Limits on what a backend's answer may ask for; a larger answer is a bad answer.
struct AnswerLimits {
  std::size_t max_topics = 256;        // topics in a connect answer
  std::size_t max_user_bytes = 128;    // the user id of a connect answer
  std::size_t max_reason_bytes = 256;  // a refusal's reason (the client sees it)
};

/// POST /connect: who connects, from where, with which of its headers (`forward`, case-insensitive;
/// the Cookie header also as a parsed "cookies" object). `client` names the connection.
std::string connect_body(const fanout::ConnectRequest& req, std::string_view client,
                         const std::vector<std::string>& forward);
/// POST /message: a text message as a JSON string, a binary one in base64 with "binary":true.
std::string message_body(std::string_view client, std::string_view user, std::string_view payload, bool binary);
/// POST /rpc: `id` and `data` are the client's JSON text, passed on as they came.
std::string rpc_body(std::string_view client, std::string_view user, std::string_view id, std::string_view method,
                     std::string_view data);
/// POST /disconnect.
std::string disconnect_body(std::string_view client, std::string_view user);

/// {"accept":true,"user":"u1","topics":["room:1"]} or {"accept":false,"status":403,"reason":".."};
/// nullopt (with `error` said) when the body is not that.
std::optional<fanout::ConnectDecision> parse_connect_answer(std::string_view body, const AnswerLimits& limits,
                                                            std::string& error);

/// {"data":<any JSON>} or {"error":{"code":4xxx,"msg":".."}}.
struct RpcAnswer {
  bool ok = false;
  std::string data;  // ok: the "data" value's JSON text, byte for byte as the backend wrote it
  int code = 0;      // !ok: 4000..4999 (another code becomes 4500)
  std::string msg;
};
std::optional<RpcAnswer> parse_rpc_answer(std::string_view body, std::string& error);

/// `s` as a JSON string literal (quotes included).
std::string json_string(std::string_view s);

}  // namespace relay::wire

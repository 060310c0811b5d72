// fanout/rpc.hpp — a client's request that wants an answer (Server::Callbacks::on_rpc):
// {"op":"rpc","id":7,"data":{...}} is answered {"event":"rpc","id":7,"data":...} or, on failure,
// {"event":"error","op":"rpc","id":7,"code":C,"msg":"..."}. docs/protocol.md, "rpc".
//
//   .on_rpc = [](fanout::Session&, const fanout::RpcRequest& req, fanout::RpcReply reply) {
//     pool.post([req, reply] { reply.result(R"({"balance":12})"); });   // from any thread, later
//   }
//
// Thread safety: an RpcReply may be copied, and called from any thread, once (later calls are
// ignored); when the client is gone by then, the answer is dropped. Unanswered within
// Session::Options::rpc_timeout, the client gets error 4504 and a late answer is dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fanout/export.hpp"

namespace fanout {

struct FANOUT_API RpcRequest {
  std::string id;      // the request's "id" as JSON text (a number or a string), echoed in the answer
  std::string data;    // the request's "data" as JSON text ("null" when absent)
  std::string method;  // the request's "method" when a string, else empty
};

class FANOUT_API RpcReply {
 public:
  struct Target;  // the session and request it answers (library-internal)
  explicit RpcReply(std::shared_ptr<Target> target) : target_(std::move(target)) {}

  /// Answers with `json` (valid JSON text: an object, array, string, number, true/false/null).
  void result(std::string_view json) const;
  /// Answers with an error: code 4000-4999 (the application's), msg for people.
  void error(int code, std::string_view msg) const;

 private:
  std::shared_ptr<Target> target_;
};

}  // namespace fanout

// RpcReply: an application's answer to a client's rpc, from any thread, once. The event is built on
// the caller's thread (off the shard) and posted to the session's shard, which queues it unless the
// rpc timed out or the session ended meanwhile (then the answer is dropped).
#include "fanout/rpc.hpp"

#include <simdjson.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <atomic>

#include <fmt/format.h>

#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_app.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/session.hpp"

namespace fanout {

struct RpcReply::Target {
  Target(std::weak_ptr<Session> s, asio::io_context& c, std::uint64_t n, std::string i)
      : session(std::move(s)), context(c), seq(n), id(std::move(i)) {}

  /// Posts the event to the session's shard, the first time only.
  void answer(std::string event) {
    if (answered.exchange(true) || session.expired()) return;
    asio::post(context, [session = session, seq = seq, event = std::move(event)] {
      if (auto s = session.lock()) s->rpc_answered(seq, event);
    });
  }

  std::weak_ptr<Session> session;
  asio::io_context& context;  // the session's shard: the Runtime's, so it outlives the Server
  std::uint64_t seq;          // SessionApp::PendingRpc::seq
  std::string id;             // the client's id, JSON text
  std::atomic<bool> answered{false};
};

void RpcReply::result(std::string_view json) const {
  if (!target_ || target_->answered.load(std::memory_order_relaxed)) return;
  // The answer is embedded as it is: text that is not one JSON value would break the client's parse.
  simdjson::dom::parser parser;
  simdjson::dom::element value;
  if (parser.parse(json.data(), json.size(), true).get(value)) {
    target_->answer(detail::rpc_error_event(target_->id, static_cast<int>(detail::ControlError::app_failed),
                                            "the server's answer is not JSON"));
    return;
  }
  target_->answer(detail::rpc_result_event(target_->id, json));
}

void RpcReply::error(int code, std::string_view msg) const {
  if (!target_ || target_->answered.load(std::memory_order_relaxed)) return;
  target_->answer(detail::rpc_error_event(target_->id, code >= 4000 && code <= 4999 ? code : 4000, msg));
}

namespace detail {

std::string rpc_result_event(std::string_view id, std::string_view data) {
  return fmt::format(R"({{"event":"rpc","id":{},"data":{}}})", id, data);
}

std::string rpc_error_event(std::string_view id, int code, std::string_view msg) {
  if (id.empty()) return fmt::format(R"({{"event":"error","op":"rpc","code":{},"msg":{}}})", code, json_string(msg));
  return fmt::format(R"({{"event":"error","op":"rpc","id":{},"code":{},"msg":{}}})", id, code, json_string(msg));
}

}  // namespace detail

// ---------------------------------------------------------------- the session's side

RpcReply Session::make_rpc_reply(std::uint64_t seq, std::string id) {
  return RpcReply(std::make_shared<RpcReply::Target>(weak_from_this(), owner_.shard.context(), seq, std::move(id)));
}

}  // namespace fanout

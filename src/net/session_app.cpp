// The application's messages on a session (Server::Callbacks::on_message and on_rpc): what is not a
// control op goes to on_message under the messages rate; rpcs wait for their answers under a count
// and a deadline. The state lives in detail::SessionApp, which only sessions that use these carry.
#include <algorithm>
#include <atomic>
#include <exception>

#include <fmt/format.h>

#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_app.hpp"
#include "fanout/detail/session_auth.hpp"  // Session::Custom owns one
#include "fanout/detail/shard.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

namespace fanout {

void Session::on_app_message(std::string_view payload, Opcode op) {
  if (auth_pending()) {
    // The application hears only from clients that passed auth.
    reply_error(static_cast<int>(detail::ControlError::unauthorized),
                R"(authenticate first: {"op":"auth","token":"..."})");
    close(CloseCode::unauthorized, "authentication required");
    return;
  }
  if (!app_state().messages.take(1, options_.messages_per_second, options_.messages_burst, detail::now_ms())) {
    detail::ShardCounters::add(owner_.rate_limited, 1);
    close(CloseCode::policy_violation, "too many messages");
    stop_reading();
    return;
  }
  try {
    owner_.server.callbacks().on_message(*this, payload, op);
  } catch (const std::exception& e) {
    reply_error(static_cast<int>(detail::ControlError::app_failed), fmt::format("message failed: {}", e.what()));
  }
}

void Session::on_rpc(detail::ControlRequest& req) {
  using detail::ControlError;
  const auto& on_rpc = owner_.server.callbacks().on_rpc;
  if (!on_rpc) {
    reply_rpc_error(req.id, static_cast<int>(ControlError::rpc_not_served), "rpc not served");
    return;
  }
  auto& app = app_state();
  if (app.rpcs.size() >= options_.max_pending_rpcs) {
    reply_rpc_error(req.id, static_cast<int>(ControlError::too_many_rpcs),
                    fmt::format("at most {} rpcs waiting for answers per connection", options_.max_pending_rpcs));
    return;
  }
  // Numbered across the process: a late answer can never be taken for a later rpc's.
  static std::atomic<std::uint64_t> next_rpc{1};
  const std::uint64_t seq = next_rpc.fetch_add(1, std::memory_order_relaxed);
  const auto deadline = options_.rpc_timeout.count() > 0 ? std::chrono::steady_clock::now() + options_.rpc_timeout
                                                         : std::chrono::steady_clock::time_point::max();
  app.rpcs.push_back({seq, req.id, deadline});
  RpcReply reply = make_rpc_reply(seq, req.id);
  const RpcRequest request{.id = std::move(req.id), .data = std::move(req.data), .method = std::move(req.method)};
  try {
    on_rpc(*this, request, std::move(reply));
  } catch (const std::exception& e) {
    rpc_answered(seq, detail::rpc_error_event(request.id, static_cast<int>(ControlError::app_failed),
                                              fmt::format("rpc failed: {}", e.what())));
  }
}

void Session::rpc_answered(std::uint64_t seq, std::string_view text) {
  if (state_ == State::closed || !custom_ || !custom_->app) return;
  auto& rpcs = custom_->app->rpcs;
  const auto it = std::find_if(rpcs.begin(), rpcs.end(), [seq](const auto& r) { return r.seq == seq; });
  if (it == rpcs.end()) return;  // timed out: the client had its 4504
  rpcs.erase(it);
  send(text);  // within the queue's control reserve, like every reply
}

bool Session::app_tick(std::chrono::steady_clock::time_point now) {
  auto& app = *custom_->app;
  while (!app.rpcs.empty() && app.rpcs.front().deadline <= now && state_ == State::open) {
    const auto r = std::move(app.rpcs.front());
    app.rpcs.erase(app.rpcs.begin());
    reply_rpc_error(r.id, static_cast<int>(detail::ControlError::rpc_timeout),
                    fmt::format("no answer within {} ms", options_.rpc_timeout.count()));
  }
  if (state_ != State::open) return false;
  // Nothing left to remember (no rpc waiting, the message bucket full again): the memory goes back.
  if (app.rpcs.empty() && app.held.empty() &&
      app.messages.full(options_.messages_per_second, options_.messages_burst, detail::now_ms()))
    custom_->app.reset();
  return true;
}

void Session::reply_rpc_error(std::string_view id, int code, std::string_view msg) {
  send(detail::rpc_error_event(id, code, msg));
}

}  // namespace fanout

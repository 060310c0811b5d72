// on_connect on a session (Server::Callbacks::on_connect, connect.hpp): the valid, admitted upgrade
// request goes to the application, and the upgrade waits for its decision. Meanwhile the session does
// not read (what the client sends next waits in TCP) and holds what came behind the head; the
// decision comes back to the shard, where 101 (or the refusal) is answered. Undecided within
// handshake_timeout of accept, the client gets 504.
#include <asio/post.hpp>
#include <atomic>
#include <exception>

#include <fmt/format.h>

#include "fanout/connect.hpp"
#include "fanout/detail/handshake.hpp"
#include "fanout/detail/handshake_reader.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_app.hpp"
#include "fanout/detail/session_auth.hpp"  // Session::Custom owns one
#include "fanout/detail/shard.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

namespace fanout {

detail::SessionApp& Session::app_state() {
  if (!custom_) custom_ = std::make_unique<Custom>();
  if (!custom_->app) custom_->app = std::make_unique<detail::SessionApp>();
  return *custom_->app;
}

void Session::begin_connect(const HttpRequest& req, std::span<const std::byte> after_head) {
  // A client does not send frames before its 101; what it did send is held, within the head's limit.
  if (after_head.size() > owner_.options().max_request_head_bytes) {
    answer_http(400, "Bad Request", {}, "too much data before the upgrade was answered\n");
    return;
  }
  app_state().held.assign(reinterpret_cast<const char*>(after_head.data()), after_head.size());
  connect_pending_ = true;
  read_paused_ = true;
  set_reading(false);
  // Called once, from any thread; the decision travels to the shard, where the session may be gone.
  auto decided = std::make_shared<std::atomic<bool>>(false);
  ConnectDecide decide = [session = weak_from_this(), context = &owner_.shard.context(),
                          decided](ConnectDecision decision) {
    if (decided->exchange(true) || session.expired()) return;
    asio::post(*context, [session, decision = std::move(decision)]() mutable {
      if (auto s = session.lock()) s->connect_decided(std::move(decision));
    });
  };
  try {
    owner_.server.callbacks().on_connect(connect_request(req), std::move(decide));
  } catch (const std::exception& e) {
    if (!connect_pending_) return;
    decided->store(true);  // whatever the callback handed on, its decision is void now
    connect_pending_ = false;
    answer_http(500, "Internal Server Error", {}, fmt::format("on_connect failed: {}\n", e.what()));
  }
}

void Session::connect_decided(ConnectDecision decision) {
  if (!connect_pending_ || state_ != State::handshake) return;  // 504 answered, or the client left
  connect_pending_ = false;
  std::string held = std::move(app_state().held);
  if (!decision.accept) {
    const int status = decision.http_status >= 400 && decision.http_status <= 599 ? decision.http_status : 403;
    const std::string_view reason = detail::http_reason(status);
    answer_http(status, reason, {}, fmt::format("{}\n", decision.reason.empty() ? reason : decision.reason));
    return;
  }
  if (!decision.user_id.empty()) {
    // The application's user id; the rest of a verified token's identity (claims, exp) stays.
    Identity id = identity() ? *identity() : Identity{};
    id.user = std::move(decision.user_id);
    set_identity(std::move(id));
  }
  read_paused_ = false;
  set_reading(true);
  accept_websocket(handshake_->request(), decision.topics);
  handshake_.reset();
  // Frames the client sent right behind its head.
  if (!held.empty() && state_ == State::open && on_ws_bytes(std::as_bytes(std::span(held)))) update_reading();
}

}  // namespace fanout

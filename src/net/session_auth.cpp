// Identity and access control on a session (Server::Options::auth, auth.hpp): the Origin and token
// checks of the upgrade, the auth and refresh ops, the access rules on subscribe, and the token's
// expiry. A server without Auth never reaches past the first test of each function here.
#include <fmt/format.h>

#include "fanout/auth.hpp"
#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/gateway_hooks.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_app.hpp"  // Session::Custom owns one
#include "fanout/detail/session_auth.hpp"
#include "fanout/http.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

namespace fanout {

namespace {

using Steady = std::chrono::steady_clock;
constexpr std::string_view k_bearer_protocol = "bearer.";

bool iequals_prefix(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// The token of an upgrade request, from the first source that has one (auth.hpp lists them).
/// `bad_scheme`: an Authorization header that is not Bearer.
std::optional<std::string> upgrade_token(const Auth& auth, const HttpRequest& req, bool& bad_scheme) {
  if (auto h = req.header("Authorization")) {
    if (!iequals_prefix(*h, "bearer ")) {
      bad_scheme = true;
      return std::nullopt;
    }
    return std::string(trim(h->substr(7)));
  }
  if (auto h = req.header("Sec-WebSocket-Protocol")) {
    std::string_view rest = *h;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto p = trim(rest.substr(0, comma));
      if (p.starts_with(k_bearer_protocol)) return std::string(p.substr(k_bearer_protocol.size()));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (auth.query_token) return detail::query_param(req.query(), "token");
  return std::nullopt;
}

std::int64_t unix_seconds(Identity::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

detail::SessionAuth& Session::auth_state() {
  if (!custom_) custom_ = std::make_unique<Custom>();
  if (!custom_->auth) custom_->auth = std::make_unique<detail::SessionAuth>();
  return *custom_->auth;
}

const Identity* Session::identity() const noexcept {
  return custom_ && custom_->auth ? custom_->auth->identity.get() : nullptr;
}

std::string_view Session::user_id() const noexcept {
  const Identity* id = identity();
  return id ? std::string_view(id->user) : std::string_view{};
}

bool Session::auth_pending() const noexcept { return custom_ && custom_->auth && custom_->auth->pending; }

void Session::set_identity(Identity identity) {
  auto& st = auth_state();
  st.pending = false;
  st.warned = false;
  st.expires = identity.expires.has_value();
  if (st.expires) {
    // The session's timers run on the steady clock: translate exp once, at the moment it is learnt.
    const auto& auth = owner_.server.options().auth;
    const auto leeway = auth.verifier ? auth.verifier->options().leeway : std::chrono::seconds(0);
    const auto left = std::chrono::duration_cast<Steady::duration>(*identity.expires - Identity::Clock::now());
    st.expires_at = Steady::now() + left + leeway;
    st.warn_at = st.expires_at - leeway - auth.expiry_warning;
  }
  st.identity = std::make_shared<const Identity>(std::move(identity));
  if (owner_.gateway && state_ == State::open) owner_.gateway->identity_changed(*this);
}

bool Session::admit(const HttpRequest& req) {
  const auto& auth = owner_.server.options().auth;
  if (auto origin = req.header("Origin")) {
    if (!auth.allowed_origins.empty() && !auth.origin_allowed(*origin)) {
      answer_http(403, "Forbidden", {}, "origin not allowed\n");
      return false;
    }
  } else if (auth.require_origin) {
    answer_http(403, "Forbidden", {}, "an Origin header is required\n");
    return false;
  }
  if (!auth.verifier) return true;
  bool bad_scheme = false;
  const auto token = upgrade_token(auth, req, bad_scheme);
  if (bad_scheme) {
    answer_http(401, "Unauthorized", "WWW-Authenticate: Bearer\r\n",
                "unsupported Authorization scheme (Bearer expected)\n");
    return false;
  }
  if (!token) {
    if (!auth.allow_anonymous) {
      // It may still authenticate with its first message.
      auto& st = auth_state();
      st.pending = true;
      st.deadline = Steady::now() + auth.auth_timeout;
      if (auto topics = detail::query_param(req.query(), "subscribe")) {
        st.deferred_subscribe = std::move(*topics);
        st.deferred_options = url_subscribe_options(req);
      }
    }
    return true;
  }
  auto r = auth.verifier->verify(*token);
  if (!r) {
    const auto reason = to_string(r.error);
    answer_http(401, "Unauthorized",
                fmt::format("WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"{}\"\r\n", reason),
                fmt::format("invalid token: {}\n", reason));
    return false;
  }
  set_identity(std::move(r.identity));
  return true;
}

bool Session::on_auth_control(const detail::ControlRequest& req) {
  using Op = detail::ControlRequest::Op;
  using detail::ControlError;
  const bool auth_op = req.op == Op::auth || req.op == Op::refresh;
  if (!auth_op && !auth_pending()) return false;
  const auto& auth = owner_.server.options().auth;
  const auto unauthorized = static_cast<int>(ControlError::unauthorized);
  if (!auth.verifier) {
    reply_error(unauthorized, "this server does not take tokens");
    return true;
  }
  if (!auth_op) {
    reply_error(unauthorized, R"(authenticate first: {"op":"auth","token":"..."})");
    close(CloseCode::unauthorized, "authentication required");
    return true;
  }
  const char* op = req.op == Op::auth ? "auth" : "refresh";
  auto r = auth.verifier->verify(req.token);
  if (!r) {
    reply_error(unauthorized, fmt::format("{}: {}", op, to_string(r.error)));
    // A refused refresh leaves the connection to its current token's exp; a refused auth ends it.
    if (req.op == Op::auth) close(CloseCode::unauthorized, to_string(r.error));
    return true;
  }
  if (const Identity* now = identity(); now && now->user != r.identity.user) {
    reply_error(static_cast<int>(ControlError::forbidden), fmt::format("{}: the token is for another sub", op));
    close(CloseCode::forbidden, "token subject changed");
    return true;
  }
  std::string deferred = std::move(auth_state().deferred_subscribe);
  auth_state().deferred_subscribe.clear();
  const std::string options = std::move(auth_state().deferred_options);
  const auto expires = r.identity.expires;
  std::string event = fmt::format(R"({{"event":"{}","sub":{})", op, detail::json_string(r.identity.user));
  if (expires) event += fmt::format(R"(,"exp":{})", unix_seconds(*expires));
  event += '}';
  set_identity(std::move(r.identity));
  reply_event(event);
  // The URL's ?subscribe= of a connection that authenticated by message: joined now, as at the upgrade.
  std::string_view rest = deferred;
  while (!rest.empty() && state_ == State::open) {
    const auto comma = rest.find(',');
    if (const auto t = rest.substr(0, comma); !t.empty())
      on_control(fmt::format(R"({{"op":"subscribe","args":[{}]{}}})", detail::json_string(t), options));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return true;
}

bool Session::may_subscribe(std::string_view topic, std::string_view token) {
  const auto& auth = owner_.server.options().auth;
  if (!auth.checks_access()) return true;
  std::optional<Identity> subscribe_token;
  if (!token.empty()) {
    if (!auth.verifier) {
      reply_error(static_cast<int>(detail::ControlError::unauthorized), "this server does not take tokens");
      return false;
    }
    auto r = auth.verifier->verify(token);
    if (!r) {
      reply_error(static_cast<int>(detail::ControlError::unauthorized),
                  fmt::format("subscribe token for {}: {}", topic, to_string(r.error)));
      return false;
    }
    subscribe_token = std::move(r.identity);
  }
  const auto name = detail::json_string(topic);
  switch (auth.rules.check(topic, identity(), subscribe_token ? &*subscribe_token : nullptr)) {
    case AccessRules::Verdict::allow: return true;
    case AccessRules::Verdict::need_identity:
      reply_error(static_cast<int>(detail::ControlError::unauthorized),
                  fmt::format("{} needs an authenticated connection", name));
      return false;
    case AccessRules::Verdict::need_token:
      reply_error(static_cast<int>(detail::ControlError::forbidden), fmt::format("{} needs a subscribe token", name));
      return false;
    case AccessRules::Verdict::deny: break;
  }
  reply_error(static_cast<int>(detail::ControlError::forbidden), fmt::format("not allowed to subscribe to {}", name));
  return false;
}

bool Session::auth_tick(Steady::time_point now) {
  auto& st = *custom_->auth;
  const auto& auth = owner_.server.options().auth;
  if (st.pending) {
    if (now < st.deadline) return true;
    reply_error(static_cast<int>(detail::ControlError::unauthorized),
                fmt::format("no auth message within {} ms", auth.auth_timeout.count()));
    close(CloseCode::unauthorized, "authentication timeout");
    return false;
  }
  if (!st.expires) return true;
  if (now >= st.expires_at) {
    close(CloseCode::token_expired, "token expired");
    return false;
  }
  if (!st.warned && auth.expiry_warning.count() > 0 && now >= st.warn_at) {
    st.warned = true;
    const auto in = std::chrono::duration_cast<std::chrono::seconds>(st.expires_at - now).count();
    reply_event(fmt::format(R"({{"event":"expiring","exp":{},"in":{}}})",
                            st.identity && st.identity->expires ? unix_seconds(*st.identity->expires) : 0, in));
  }
  return true;
}

}  // namespace fanout

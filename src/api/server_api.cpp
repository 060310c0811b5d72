// The server API's HTTP side: endpoints, the API key, queries from the URL (docs/server-api.md).
#include "fanout/server_api.hpp"

#include <functional>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "fanout/detail/json.hpp"

namespace fanout {

namespace {
using Kind = ApiCommand::Kind;

/// Equal in a time that depends on `expected`'s length only, not on where `given` differs.
bool constant_time_equal(std::string_view given, std::string_view expected) noexcept {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned char>((i < given.size() ? given[i] : 0) ^ expected[i]);
  return diff == 0;
}

/// The key a request offers: `Authorization: Bearer <key>`, else `X-API-Key: <key>`.
std::string_view offered_key(const HttpRequest& req) noexcept {
  if (auto auth = req.header("Authorization")) {
    constexpr std::string_view scheme = "bearer ";
    if (auth->size() < scheme.size()) return {};
    for (std::size_t i = 0; i < scheme.size(); ++i)
      if (((*auth)[i] | 0x20) != scheme[i]) return {};
    auto key = auth->substr(scheme.size());
    while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
    return key;
  }
  return req.header("X-API-Key").value_or(std::string_view{});
}

ApiResult api_error(int status, std::string_view message) {
  std::string body = "{\"error\":";
  detail::append_json_string(body, message);
  body += '}';
  return {status, std::move(body)};
}

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    if (auto part = s.substr(0, comma); !part.empty()) out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

/// GET /presence?topic=T[&clients=1], /online?user=U or ?users=A,B, /info: the command the URL says.
ApiParse query_command(Kind kind, const HttpRequest& req) {
  ApiParse out;
  ApiCommand c;
  c.kind = kind;
  const auto q = req.query();
  const auto get = [&](std::string_view name) { return detail::query_param(q, name); };
  switch (kind) {
    case Kind::presence: {
      auto topic = get("topic");
      if (!topic || topic->empty()) {
        out.error = "missing parameter \"topic\"";
        return out;
      }
      c.topic = std::move(*topic);
      const auto clients = get("clients");
      c.list_clients = clients && (*clients == "1" || *clients == "true");
      break;
    }
    case Kind::online: {
      if (auto users = get("users")) {
        c.users = split_commas(*users);
      } else if (auto user = get("user"); user && !user->empty()) {
        c.user = std::move(*user);
      } else {
        out.error = "missing parameter \"user\" or \"users\"";
        return out;
      }
      break;
    }
    default: break;
  }
  out.command = std::move(c);
  return out;
}

HttpResponse to_http(const ApiResult& r) {
  HttpResponse res{.status = r.status, .content_type = "application/json", .body = r.body};
  res.body += '\n';
  res.headers = "Cache-Control: no-store\r\n";
  if (r.status == 401) res.headers += "WWW-Authenticate: Bearer realm=\"fanout-api\"\r\n";
  return res;
}
}  // namespace

struct ServerApi::State {
  using Keys = std::vector<std::string>;
  // A constructor, not aggregate init: clang 14 (the fuzz build) has no parenthesized aggregate init.
  State(Options o, ApiExecutor e) : options(std::move(o)), executor(std::move(e)) {}
  Options options;  // options.keys: as constructed; keys() is what is in force
  ApiExecutor executor;
  mutable std::mutex keys_mutex;
  mutable std::shared_ptr<const Keys> keys_in_force;  // replaced whole by set_keys, under the lock

  std::shared_ptr<const Keys> keys() const {
    std::lock_guard lock(keys_mutex);
    return keys_in_force;
  }

  bool authorized(const HttpRequest& req) const noexcept {
    const auto key = offered_key(req);
    const auto keys = this->keys();
    bool match = false;
    for (const auto& k : *keys) match |= !key.empty() && constant_time_equal(key, k);  // no early exit
    return match;
  }

  /// A route whose handler checks the key, then runs `serve`.
  HttpRoute route(std::shared_ptr<const State> self, std::string path, bool prefix, std::vector<std::string> methods,
                  std::function<ApiResult(const State&, const HttpRequest&)> serve) const {
    return HttpRoute{std::move(path), prefix,
                     [self = std::move(self), serve = std::move(serve)](const HttpRequest& req) {
                       if (!self->authorized(req))
                         return to_http(api_error(401, "API key required (Authorization: Bearer, or X-API-Key)"));
                       return to_http(serve(*self, req));
                     },
                     std::move(methods)};
  }
};

ServerApi::ServerApi(Gateway& gateway, Hub& hub, Options options) {
  auto state = std::make_shared<State>(options, ApiExecutor(gateway, hub, options.executor));
  state->keys_in_force = std::make_shared<const State::Keys>(options.keys);
  state_ = std::move(state);
}

ServerApi::~ServerApi() = default;

const ServerApi::Options& ServerApi::options() const noexcept { return state_->options; }
const ApiExecutor& ServerApi::executor() const noexcept { return state_->executor; }
bool ServerApi::authorized(const HttpRequest& request) const noexcept { return state_->authorized(request); }

void ServerApi::set_keys(std::vector<std::string> keys) {
  auto fresh = std::make_shared<const State::Keys>(std::move(keys));
  std::lock_guard lock(state_->keys_mutex);
  state_->keys_in_force.swap(fresh);  // the old keys are freed outside the lock, by `fresh`
}

std::size_t ServerApi::key_count() const { return state_->keys()->size(); }

std::vector<HttpRoute> ServerApi::routes() const {
  const auto& s = *state_;
  const auto& prefix = s.options.prefix;
  std::vector<HttpRoute> routes;
  for (const auto kind : {Kind::publish, Kind::broadcast, Kind::send_to_user, Kind::send_to_client, Kind::join,
                          Kind::leave, Kind::disconnect, Kind::bind, Kind::unbind}) {
    routes.push_back(s.route(state_, fmt::format("{}/{}", prefix, ApiCommand::name(kind)), false, {"POST"},
                             [kind](const State& st, const HttpRequest& req) {
                               auto parsed = parse_api_command(kind, req.body());
                               if (!parsed.command) return api_error(400, parsed.error);
                               return st.executor.execute(*parsed.command);
                             }));
  }
  routes.push_back(s.route(state_, prefix + "/batch", false, {"POST"}, [](const State& st, const HttpRequest& req) {
    return st.executor.execute_batch(req.body());
  }));
  for (const auto kind : {Kind::presence, Kind::online, Kind::info}) {
    routes.push_back(s.route(state_, fmt::format("{}/{}", prefix, ApiCommand::name(kind)), false, {"GET"},
                             [kind](const State& st, const HttpRequest& req) {
                               auto parsed = query_command(kind, req);
                               if (!parsed.command) return api_error(400, parsed.error);
                               return st.executor.execute(*parsed.command);
                             }));
  }
  // Anything else under the prefix: 404 in JSON (after the key, so the endpoints are not probed).
  routes.push_back(s.route(state_, prefix + "/", true, {"GET", "POST"}, [](const State&, const HttpRequest& req) {
    return api_error(404, fmt::format("no endpoint {} (docs/server-api.md)", req.path()));
  }));
  return routes;
}

}  // namespace fanout

// Server API commands run against a Gateway, answered in JSON (docs/server-api.md).
#include <iterator>

#include <fmt/format.h>

#include "fanout/api_commands.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/gateway.hpp"
#include "fanout/hub.hpp"

namespace fanout {

namespace {
using Kind = ApiCommand::Kind;

ApiResult error(int status, std::string_view message) {
  std::string body = "{\"error\":";
  detail::append_json_string(body, message);
  body += '}';
  return {status, std::move(body)};
}

ApiResult count(std::string_view name, std::size_t n) { return {200, fmt::format(R"({{"{}":{}}})", name, n)}; }

ApiResult ok(bool yes) { return {200, yes ? R"({"ok":true})" : R"({"ok":false})"}; }

void append_strings(std::string& out, const std::vector<std::string>& list) {
  out += '[';
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    detail::append_json_string(out, list[i]);
  }
  out += ']';
}
}  // namespace

ApiExecutor::ApiExecutor(Gateway& gateway, Hub& hub) : ApiExecutor(gateway, hub, Options{}) {}
ApiExecutor::ApiExecutor(Gateway& gateway, Hub& hub, Options options)
    : gateway_(gateway), hub_(hub), options_(options) {}

ApiResult ApiExecutor::execute(const ApiCommand& c) const {
  // What the gateway would refuse silently gets a 400 that says why; addressing nobody stays a 200.
  const bool has_topic = c.kind == Kind::publish || c.kind == Kind::join || c.kind == Kind::leave;
  if (has_topic && !hub_.valid_topic(c.topic)) return error(400, "invalid \"topic\" (docs/protocol.md, topic names)");
  const auto max_user = gateway_.options().max_user_id_bytes;
  if (c.user.size() > max_user) return error(400, fmt::format("\"user\" is longer than {} bytes", max_user));
  switch (c.kind) {
    case Kind::publish: return count("delivered", gateway_.publish(c.topic, c.data, c.exclude));
    case Kind::broadcast: return count("delivered", gateway_.send_to_all(c.data, c.exclude));
    case Kind::send_to_user: return count("delivered", gateway_.send_to_user(c.user, c.data));
    case Kind::send_to_client: return count("delivered", gateway_.send_to_client(c.client, c.data));
    case Kind::join: return ok(gateway_.join(c.client, c.topic));
    case Kind::leave: return ok(gateway_.leave(c.client, c.topic));
    case Kind::bind: return ok(gateway_.bind_user(c.client, c.user));
    case Kind::unbind: return ok(gateway_.unbind_user(c.client));
    case Kind::disconnect: {
      const auto code = static_cast<CloseCode>(c.code);
      std::size_t closed = 0;
      if (!c.client.empty()) closed += gateway_.close_client(c.client, code, c.reason) ? 1 : 0;
      if (!c.user.empty()) closed += gateway_.close_user(c.user, code, c.reason);
      return count("closed", closed);
    }
    case Kind::presence: {
      std::string body = "{\"topic\":";
      detail::append_json_string(body, c.topic);
      const auto members = gateway_.topic_users(c.topic);
      const auto users = gateway_.topic_user_count(c.topic);
      fmt::format_to(std::back_inserter(body), R"(,"connection_count":{},"user_count":{},"truncated":{},"users":[)",
                     gateway_.topic_client_count(c.topic), users, members.size() < users);
      for (std::size_t i = 0; i < members.size(); ++i) {
        body += i ? ",{\"user\":" : "{\"user\":";
        detail::append_json_string(body, members[i].user);
        fmt::format_to(std::back_inserter(body), R"(,"connections":{}}})", members[i].connections);
      }
      body += ']';
      if (c.list_clients) {
        body += ",\"clients\":";
        append_strings(body, gateway_.topic_clients(c.topic));
      }
      body += '}';
      return {200, std::move(body)};
    }
    case Kind::online: {
      if (c.users.empty()) {
        std::string body = "{\"user\":";
        detail::append_json_string(body, c.user);
        const auto clients = gateway_.clients_of_user(c.user);
        body += clients.empty() ? ",\"online\":false,\"clients\":" : ",\"online\":true,\"clients\":";
        append_strings(body, clients);
        body += '}';
        return {200, std::move(body)};
      }
      std::string body = "{\"online\":{";
      for (std::size_t i = 0; i < c.users.size(); ++i) {
        const auto& u = c.users[i];
        if (u.size() > max_user) return error(400, fmt::format("\"users\": one is longer than {} bytes", max_user));
        if (i) body += ',';
        detail::append_json_string(body, u);
        body += gateway_.is_online(u) ? ":true" : ":false";
      }
      body += "}}";
      return {200, std::move(body)};
    }
    case Kind::info: {
      const auto s = gateway_.stats();
      std::string body = "{\"node\":";
      detail::append_json_string(body, gateway_.options().node);
      fmt::format_to(std::back_inserter(body),
                     R"(,"connections":{},"users":{},"topics":{},"active_topics":{},"sends":{},"published":{}}})",
                     s.connections, s.users, hub_.topic_count(), hub_.active_topic_count(), s.sends, hub_.published());
      return {200, std::move(body)};
    }
  }
  return error(400, "unknown command");
}

ApiResult ApiExecutor::execute_json(std::string_view json) const {
  auto parsed = parse_api_command(json);
  if (parsed.batch) return execute_batch(json);
  if (!parsed.command) return error(400, parsed.error);
  return execute(*parsed.command);
}

ApiResult ApiExecutor::execute_batch(std::string_view json) const {
  auto batch = parse_api_batch(json, options_.max_batch);
  if (batch.status != 200) return error(batch.status, batch.error);
  std::string body = "{\"results\":[";
  for (std::size_t i = 0; i < batch.commands.size(); ++i) {
    if (i) body += ',';
    const auto& p = batch.commands[i];
    auto r = p.command ? execute(*p.command) : error(400, p.error);
    if (!r.ok()) {
      r.body.pop_back();  // {"error":"..."} gains the status of its own
      fmt::format_to(std::back_inserter(r.body), R"(,"status":{}}})", r.status);
    }
    body += r.body;
  }
  body += "]}";
  return {200, std::move(body)};
}

}  // namespace fanout

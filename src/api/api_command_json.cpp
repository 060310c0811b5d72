// An ApiCommand back to its JSON form, for transports that carry commands as text (the Redis
// command stream: RedisGatewayLink forwards what this node's API ran to the other nodes).
#include <fmt/format.h>

#include "fanout/api_commands.hpp"
#include "fanout/detail/json.hpp"

namespace fanout {

namespace {
using Kind = ApiCommand::Kind;

void field(std::string& out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  fmt::format_to(std::back_inserter(out), ",\"{}\":", name);
  detail::append_json_string(out, value);
}

void strings(std::string& out, std::string_view name, const std::vector<std::string>& list) {
  if (list.empty()) return;
  fmt::format_to(std::back_inserter(out), ",\"{}\":[", name);
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    detail::append_json_string(out, list[i]);
  }
  out += ']';
}
}  // namespace

std::string to_json(const ApiCommand& c) {
  std::string out = "{\"cmd\":";
  detail::append_json_string(out, ApiCommand::name(c.kind));
  field(out, "topic", c.topic);
  field(out, "user", c.user);
  field(out, "client", c.client);
  strings(out, "users", c.users);
  if (c.kind == Kind::publish || c.kind == Kind::broadcast || c.kind == Kind::send_to_user ||
      c.kind == Kind::send_to_client) {
    // Always as a JSON string: parsing gives back exactly these bytes (a string is sent as its
    // content), whatever JSON value the command first carried.
    out += ",\"data\":";
    detail::append_json_string(out, c.data);
  }
  strings(out, "exclude", c.exclude);
  if (c.kind == Kind::disconnect) {
    fmt::format_to(std::back_inserter(out), ",\"code\":{}", c.code);
    field(out, "reason", c.reason);
  }
  if (c.kind == Kind::presence && c.list_clients) out += ",\"clients\":true";
  out += '}';
  return out;
}

}  // namespace fanout

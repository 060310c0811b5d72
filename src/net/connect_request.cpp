// ConnectRequest: the upgrade request on_connect sees (an owned copy), and its helpers for headers,
// cookies and the query string.
#include "fanout/connect.hpp"

#include "fanout/detail/gateway_hooks.hpp"
#include "fanout/detail/server_shard.hpp"

#include "fanout/http.hpp"
#include "fanout/session.hpp"

namespace fanout {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> ConnectRequest::header(std::string_view name) const noexcept {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return std::string_view(v);
  return std::nullopt;
}

std::optional<std::string> ConnectRequest::cookie(std::string_view name) const {
  // RFC 6265 5.4: "a=1; b=2", possibly in several Cookie headers; a value may be quoted.
  for (const auto& [k, v] : headers) {
    if (!iequals(k, "Cookie")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      const auto pair = trim(rest.substr(0, semi));
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
        auto value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        return std::string(value);
      }
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return std::nullopt;
}

std::optional<std::string> ConnectRequest::query_param(std::string_view key) const {
  return detail::query_param(query, key);
}

ConnectRequest Session::connect_request(const HttpRequest& req) const {
  ConnectRequest r;
  r.session_id = id_;
  // The one place a Gateway attached to the server names the connection (gateway.hpp); empty without one.
  if (owner_.gateway) r.client_id = owner_.gateway->client_id(id_);
  auto address = remote_.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  r.remote_address = address.to_string();
  r.remote_port = remote_.port();
  r.path = req.path();
  r.query = req.query();
  r.headers = req.headers();
  if (const Identity* id = identity()) r.identity = *id;
  return r;
}

}  // namespace fanout

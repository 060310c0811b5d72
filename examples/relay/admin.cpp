#include "admin.hpp"

#include <fanout/topic_routes.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include "log.hpp"
#include "status_page.hpp"

namespace relay {

std::vector<fanout::HttpRoute> admin_routes(const Config& config, const fanout::MetricsRegistry& registry,
                                            const StatusBoard& board, std::function<LiveTotals()> totals,
                                            fanout::Hub& hub) {
  std::vector<fanout::HttpRoute> routes;
  const auto& http = config.http;
  if (http.metrics) routes.push_back(fanout::metrics_route(registry, http.metrics_path));
  if (http.status_page) {
    routes.push_back({"/", false, [](const fanout::HttpRequest&) {
                        return fanout::HttpResponse{.content_type = "text/html; charset=utf-8",
                                                    .body = std::string(status_page_html()),
                                                    .headers = "Cache-Control: no-cache\r\n"};
                      }});
    routes.push_back({"/status.json", false, [&board, totals = std::move(totals)](const fanout::HttpRequest&) {
                        return fanout::HttpResponse{.content_type = "application/json",
                                                    .body = board.json(totals()),
                                                    .headers = "Cache-Control: no-store\r\n"};
                      }});
  }
  if (config.admin.topic_list) routes.push_back(fanout::topic_list_route(hub, config.admin.topics));
  return routes;
}

bool has_bearer(const fanout::HttpRequest& req, std::string_view token) noexcept {
  auto value = req.header("Authorization");
  if (!value || value->size() < 7) return false;
  constexpr std::string_view scheme = "bearer ";
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>((*value)[i])) != scheme[i]) return false;
  auto given = value->substr(scheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  // Constant time in the token's bytes: a wrong guess does not say how much of it was right.
  return given.size() == token.size() && CRYPTO_memcmp(given.data(), token.data(), token.size()) == 0;
}

std::vector<fanout::HttpRoute> guarded(std::vector<fanout::HttpRoute> routes, const std::string& token) {
  if (token.empty()) return routes;
  for (auto& r : routes) {
    // Static HTML (the data it polls is guarded), and readiness, which probes ask without a token.
    if (!r.prefix && (r.path == "/" || r.path == "/readyz")) continue;
    r.handler = [token, inner = std::move(r.handler)](const fanout::HttpRequest& req) {
      if (!has_bearer(req, token))
        return fanout::HttpResponse{.status = 401,
                                    .content_type = "application/json",
                                    .body = "{\"error\":\"admin token required (Authorization: Bearer)\"}\n",
                                    .headers = "WWW-Authenticate: Bearer realm=\"fanout-admin\"\r\n"};
      return inner(req);
    };
  }
  return routes;
}

std::unique_ptr<fanout::Server> build_admin(fanout::Runtime& runtime, fanout::Hub& hub, const Config& config,
                                            const std::vector<fanout::HttpRoute>& routes,
                                            const fanout::ServerApi* api) {
  if (!config.admin.listen) return nullptr;
  return building(1, "cannot listen on the admin address", [&] {
    auto o = config.server;  // its limits and timeouts; no WebSocket paths, no topic pull
    o.host = config.admin.listen->host;
    o.port = config.admin.listen->port;
    o.paths.clear();
    o.envelope_paths.clear();
    o.tls.reset();
    o.topic_endpoints = false;
    o.http_routes = guarded(routes, config.admin.token);
    if (api) {  // its own keys; the only listener that reads request bodies
      auto api_routes = api->routes();
      o.http_routes.insert(o.http_routes.end(), api_routes.begin(), api_routes.end());
      o.max_request_body_bytes = api->options().max_body_bytes;
    }
    auto server = std::make_unique<fanout::Server>(runtime, hub, o);
    log("admin: serving http://{}:{}/ ({}{}topics{}){}", o.host, server->port(),
        config.http.metrics ? config.http.metrics_path + ", " : "",
        config.http.status_page ? "status page, status.json, " : "",
        api ? fmt::format(", server API {}/* ({} keys)", api->options().prefix, api->options().keys.size()) : "",
        config.admin.token.empty() ? "" : "; bearer token required");
    return server;
  });
}

}  // namespace relay

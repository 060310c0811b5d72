// The relay's admin surface: metrics, the status page, status.json and the topic list, on a listener
// of their own (loopback by default) rather than on the clients' port; optionally also on the client
// listeners, behind a bearer token. docs/security.md, "The admin listener and what is redacted".
//
// Adding an endpoint (the server API, say) is one push_back on the routes before build_admin():
//
//   auto routes = relay::admin_routes(config, registry, board, totals, *hub);
//   routes.push_back({"/api/publish", false, handler});       // guarded by the token like the rest
//   auto admin = relay::build_admin(*runtime, *hub, config, routes);
//
// Thread safety: handlers run on shard threads, as every fanout::HttpRoute does.
#pragma once

#include <fanout/http.hpp>
#include <fanout/hub.hpp>
#include <fanout/metrics.hpp>
#include <fanout/runtime.hpp>
#include <fanout/server.hpp>
#include <fanout/server_api.hpp>

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "status.hpp"

namespace relay {

/// GET metrics_path, GET / (the page), GET /status.json (as [http] enables them) and GET /topics
/// (paginated, [admin] topics_*). The handlers call `totals`, so what it reads must be built
/// before the runtime starts.
std::vector<fanout::HttpRoute> admin_routes(const Config& config, const fanout::MetricsRegistry& registry,
                                            const StatusBoard& board, std::function<LiveTotals()> totals,
                                            fanout::Hub& hub);

/// `routes` with each handler behind `Authorization: Bearer <token>` (compared in constant time);
/// a request without it gets 401. The status page itself (GET /, static HTML without data) stays
/// open, so a browser can load it and send the token from the URL fragment. An empty token: as is.
std::vector<fanout::HttpRoute> guarded(std::vector<fanout::HttpRoute> routes, const std::string& token);

/// True when `req` carries `Authorization: Bearer <token>`.
bool has_bearer(const fanout::HttpRequest& req, std::string_view token) noexcept;

/// The admin listener ([admin] listen), serving `routes` guarded by the token when one is set, and the
/// server API's routes when `api` is given (behind the API's keys, not the admin token; the listener
/// then accepts request bodies up to [api] max_body_bytes). nullptr when it is off. Throws
/// StartupError (exit 1) when it cannot listen.
std::unique_ptr<fanout::Server> build_admin(fanout::Runtime& runtime, fanout::Hub& hub, const Config& config,
                                            const std::vector<fanout::HttpRoute>& routes,
                                            const fanout::ServerApi* api = nullptr);

}  // namespace relay

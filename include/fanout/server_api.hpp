// fanout/server_api.hpp — the server API over HTTP, for business code in any language: POST
// /api/publish, /api/send_to_user, ... (ApiExecutor's commands, one endpoint each, and /api/batch),
// GET /api/presence, /api/online, /api/info; JSON in and out, behind an API key. docs/server-api.md
// lists every endpoint; docs/security.md says where to serve it (an admin listener, never the
// clients' port).
//
//   fanout::ServerApi api(gateway, hub, {.keys = {key}});
//   fanout::Server::Options admin{.host = "127.0.0.1", .port = 8081, .paths = {}};
//   admin.max_request_body_bytes = api.options().max_body_bytes;  // the API's POSTs carry bodies
//   admin.http_routes = api.routes();
//   fanout::Server admin_server(rt, hub, admin);
//   // curl -H "Authorization: Bearer $KEY" -d '{"user":"alice","data":{"hi":1}}' 127.0.0.1:8081/api/send_to_user
//
// Every request needs one of the keys, as `Authorization: Bearer <key>` or `X-API-Key: <key>`
// (compared in constant time); without it every path under the prefix answers 401.
//
// Thread safety: the routes' handlers run on shard threads, several at once; they share nothing
// mutable. The routes hold the API's state, so they may outlive the ServerApi; the Gateway and Hub
// must outlive the routes (the server they are mounted on).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/api_commands.hpp"
#include "fanout/export.hpp"
#include "fanout/http.hpp"

namespace fanout {

class Gateway;
class Hub;

class FANOUT_API ServerApi {
 public:
  struct Options {
    std::vector<std::string> keys{};       // accepted API keys (several: rotation); none: all 401 (set_keys)
    std::string prefix = "/api";           // the endpoints are prefix + "/publish", ...
    std::size_t max_body_bytes = 1 << 20;  // for the listener's Server::Options::max_request_body_bytes
    ApiExecutor::Options executor{};       // max_batch
  };

  ServerApi(Gateway& gateway, Hub& hub, Options options);
  ~ServerApi();
  ServerApi(const ServerApi&) = delete;
  ServerApi& operator=(const ServerApi&) = delete;

  const Options& options() const noexcept;
  /// The endpoints, to mount on a listener that accepts bodies (max_request_body_bytes > 0). The
  /// last one answers 404 (in JSON) for any other path under the prefix.
  std::vector<HttpRoute> routes() const;
  /// The request carries one of the keys.
  bool authorized(const HttpRequest& request) const noexcept;
  /// Replaces the accepted keys (a rotation, e.g. on SIGHUP); any thread, also while requests run.
  /// The routes already handed out use the new keys from their next request.
  void set_keys(std::vector<std::string> keys);
  std::size_t key_count() const;
  const ApiExecutor& executor() const noexcept;

 private:
  struct State;
  std::shared_ptr<const State> state_;
};

}  // namespace fanout

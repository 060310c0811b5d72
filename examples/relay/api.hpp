// The relay's two-way side: the Gateway that names the client listeners' connections (client ids,
// user ids) and the server API that business code drives it with, over HTTP on the admin listener
// ([api], docs/server-api.md).
#pragma once

#include <fanout/gateway.hpp>
#include <fanout/hub.hpp>
#include <fanout/runtime.hpp>
#include <fanout/server_api.hpp>

#include <functional>
#include <memory>
#include <string_view>

#include "config.hpp"
#include "servers.hpp"

namespace relay {

/// The other nodes, when this one is linked to them through Redis (BusNode::link_gateway,
/// docs/cluster.md): the gateway tells them its users, the API forwards actions and asks them who
/// is online. Unset members: a single node.
struct Cluster {
  std::function<void(std::string_view user, bool online)> on_user_presence;
  std::function<fanout::ApiExecutor::Reach(const fanout::ApiCommand&)> forward;
  std::function<bool(std::string_view user)> online;
  std::function<std::size_t()> online_count;
  bool live_publish = false;  // ApiExecutor::Options::live_publish: a bus numbers this node's topics
};

/// The gateway of this node ([gateway]); attach it to the client listeners before the runtime starts.
/// It must outlive them (and the admin listener, whose API routes call it).
std::unique_ptr<fanout::Gateway> build_gateway(fanout::Runtime& runtime, fanout::Hub& hub, const Config& config,
                                               const Cluster& cluster = {});
void attach_gateway(fanout::Gateway& gateway, const Servers& servers);

/// The server API when [api] has keys, else nullptr (its paths then answer 404).
std::unique_ptr<fanout::ServerApi> build_api(const Config& config, fanout::Gateway& gateway, fanout::Hub& hub,
                                             const Cluster& cluster = {});

/// SIGHUP: reads [api] key_file again; a file that cannot be read, or holds no valid key, keeps the
/// keys in use (and says why in the log). Nothing to do without the API.
void reload_api_keys(const Config& config, fanout::ServerApi* api);

}  // namespace relay

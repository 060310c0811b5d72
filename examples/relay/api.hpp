// The relay's two-way side: the Gateway that names the client listeners' connections (client ids,
// user ids) and the server API that business code drives it with, over HTTP on the admin listener
// ([api], docs/server-api.md).
#pragma once

#include <fanout/gateway.hpp>
#include <fanout/hub.hpp>
#include <fanout/runtime.hpp>
#include <fanout/server_api.hpp>

#include <memory>

#include "config.hpp"
#include "servers.hpp"

namespace relay {

/// The gateway of this node ([gateway]); attach it to the client listeners before the runtime starts.
/// It must outlive them (and the admin listener, whose API routes call it).
std::unique_ptr<fanout::Gateway> build_gateway(fanout::Runtime& runtime, fanout::Hub& hub, const Config& config);
void attach_gateway(fanout::Gateway& gateway, const Servers& servers);

/// The server API when [api] has keys, else nullptr (its paths then answer 404).
std::unique_ptr<fanout::ServerApi> build_api(const Config& config, fanout::Gateway& gateway, fanout::Hub& hub);

/// SIGHUP: reads [api] key_file again; a file that cannot be read, or holds no valid key, keeps the
/// keys in use (and says why in the log). Nothing to do without the API.
void reload_api_keys(const Config& config, fanout::ServerApi* api);

}  // namespace relay

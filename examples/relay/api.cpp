#include "api.hpp"

#include "log.hpp"

namespace relay {

std::unique_ptr<fanout::Gateway> build_gateway(fanout::Runtime& runtime, fanout::Hub& hub, const Config& config) {
  return building(2, "bad [gateway] configuration", [&] {
    return std::make_unique<fanout::Gateway>(runtime, hub,
                                             fanout::Gateway::Options{
                                                 .node = config.gateway.node,
                                                 .max_connections_per_user = config.gateway.max_connections_per_user,
                                                 .max_list = config.gateway.max_list,
                                             });
  });
}

void attach_gateway(fanout::Gateway& gateway, const Servers& servers) {
  for (const auto& s : servers) gateway.attach(*s);
}

std::unique_ptr<fanout::ServerApi> build_api(const Config& config, fanout::Gateway& gateway, fanout::Hub& hub) {
  if (!config.api.enabled()) return nullptr;
  return std::make_unique<fanout::ServerApi>(gateway, hub,
                                             fanout::ServerApi::Options{
                                                 .keys = config.api.keys,
                                                 .max_body_bytes = config.api.max_body_bytes,
                                                 .executor = {.max_batch = config.api.max_batch},
                                             });
}

void reload_api_keys(const Config& config, fanout::ServerApi* api) {
  if (!api) return;
  try {
    auto keys = read_api_keys(config.api.key_file);
    const auto n = keys.size();
    api->set_keys(std::move(keys));
    log("SIGHUP: API keys reloaded from {}: {} in use", config.api.key_file, n);
  } catch (const std::exception& e) {
    log("SIGHUP: API key file {} refused, keeping the {} keys in use: {}", config.api.key_file, api->key_count(),
        e.what());
  }
}

}  // namespace relay

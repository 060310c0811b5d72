// The relay's upstream feeds: the configured [[upstream]]s (and the bundled simulator in front of
// them), each with its router and, for a standby pair, the dedupe that drops the second copy.
//
// Thread safety: built and started on the main thread before the ingest loop runs; their callbacks
// then run on the ingest thread. stop_feeds() from the main thread once the relay is stopping.
#pragma once

#include <fanout/dedupe.hpp>
#include <fanout/router.hpp>
#include <fanout/upstream.hpp>

#include <asio/io_context.hpp>

#include <feed_sim.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

namespace relay {

/// One configured upstream: its connection(s), its router and, for a standby pair, the dedupe.
struct Feed {
  UpstreamConfig config;
  fanout::Router router;
  std::unique_ptr<fanout::Dedupe> dedupe;
  std::vector<std::unique_ptr<fanout::Upstream>> connections;
  std::vector<std::string> names;  // of the connections, in logs, metrics and the status page
};
using Feeds = std::vector<std::unique_ptr<Feed>>;

/// What happens to a routed, first-seen upstream message (on the ingest thread): publishing, the
/// processor or the bus. `r` may be moved from.
using Intake = std::function<void(const Feed& feed, fanout::Routed& r, std::string_view msg, bool binary)>;

/// Starts the bundled feed simulator when `config` asks for it (not on an edge) and makes it the
/// first upstream. Returns null when it is not wanted. Throws StartupError.
std::unique_ptr<fanout::sim::FeedSimulator> start_simulator(Config& config);

/// One Feed per configured upstream, its connections built but not started. Throws StartupError.
Feeds build_feeds(asio::io_context& ingest, const Config& config, Intake intake);

void start_feeds(Feeds& feeds);
void stop_feeds(Feeds& feeds);

}  // namespace relay

// The relay's [[sink]]s: journals and PostgreSQL tables fed with what the hub publishes.
#pragma once

#include <fanout/hub.hpp>
#include <fanout/sink.hpp>

#include <memory>

#include "config.hpp"

namespace relay {

/// Every configured sink, spill_to links made, not started. Throws StartupError.
std::unique_ptr<fanout::SinkSet> build_sinks(const Config& config);

/// Feeds `sinks` with every message `hub` accepts, under the hub's seq: one observer, whoever
/// publishes (the ingest thread, a processor worker, the Redis bus on an edge). Refused and duplicate
/// messages are not recorded. Call before anything publishes; `sinks` must outlive the publishing.
void attach_sinks(fanout::Hub& hub, fanout::SinkSet& sinks);

/// Logs each sink's final counts, after SinkSet::stop().
void report_sinks(const fanout::SinkSet& sinks);

}  // namespace relay

// The relay's [[sink]]s: journals and PostgreSQL tables fed with what the hub publishes.
#pragma once

#include <fanout/sink.hpp>

#include <memory>

#include "config.hpp"

namespace relay {

/// Every configured sink, spill_to links made, not started. Throws StartupError.
std::unique_ptr<fanout::SinkSet> build_sinks(const Config& config);

/// Logs each sink's final counts, after SinkSet::stop().
void report_sinks(const fanout::SinkSet& sinks);

}  // namespace relay

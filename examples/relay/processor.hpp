// The relay's [processor]: a stage ("bars" or "forward") between the router and publishing.
#pragma once

#include <fanout/processor.hpp>

#include <memory>

#include "config.hpp"

namespace relay {

/// The configured processor, not started, or null when [processor] is off. `config` must outlive it
/// (the stages read it). `publish` runs on the worker threads.
std::unique_ptr<fanout::Processor> build_processor(const ProcessorConfig& config, fanout::Processor::Publish publish);

/// The processor's final counts, after Processor::stop().
void report_processor(const fanout::Processor& processor);

}  // namespace relay

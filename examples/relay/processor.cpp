#include "processor.hpp"

#include <bars.hpp>

#include "log.hpp"

namespace relay {
namespace {

// One handler per worker: a topic always reaches the same worker, so a stage's state needs no lock.
fanout::Processor::HandlerFactory stage(const ProcessorConfig& pc) {
  return [&pc](std::size_t) -> fanout::Processor::Handler {
    if (pc.stage == "forward")
      return [](const fanout::Processor::Message& m, fanout::Processor::Output& out) { out.forward(m); };
    // Raw first, so a tick the bar builder rejects (it throws, counted) is still forwarded.
    return [&pc, bars = relay::stages::BarBuilder({.interval = pc.bar_interval})](
               const fanout::Processor::Message& m, fanout::Processor::Output& out) mutable {
      out.forward(m);
      if (!m.topic.starts_with(pc.bar_source)) return;
      if (auto bar = bars.add(m.payload)) out.emit(pc.bar_topic + bar->inst, bar->json());
    };
  };
}

}  // namespace

std::unique_ptr<fanout::Processor> build_processor(const ProcessorConfig& pc, fanout::Processor::Publish publish) {
  if (!pc.enabled) return nullptr;
  auto options = pc.options;
  options.on_error = [](std::string_view e) { log_warn("{}", e); };
  auto processor = std::make_unique<fanout::Processor>(options, stage(pc), std::move(publish));
  log("processor: stage {}, {} worker(s), queue {} per worker, overflow {}", pc.stage, options.workers,
      options.max_queued, options.overflow == fanout::Processor::Overflow::block ? "block" : "drop_oldest");
  return processor;
}

void report_processor(const fanout::Processor& processor) {
  const auto p = processor.stats();
  log("processor: processed {} emitted {} dropped {} errors {}", p.processed, p.emitted, p.dropped, p.errors);
}

}  // namespace relay

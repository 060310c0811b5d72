// fanout/pipeline_metrics.hpp — series for the stages off the delivery path: a processing stage and
// sinks (queue depth, lag, throughput, drops, errors), registered by callback like everything else.
//
// Templates over the component, so this header depends on nothing but the registry: any type with
// `stats()` returning the fields used below fits (fanout::Processor and fanout::Sink do).
//
//   auto p = fanout::add_processor_metrics(registry, *processor);
//   for (auto& s : sinks.sinks()) for (auto& r : fanout::add_sink_metrics(registry, *s, s->options().name))
//     regs.push_back(std::move(r));
//
// Thread safety: as library_metrics.hpp. stats() is called at scrape time, from the scraping thread.
#pragma once

#include <chrono>
#include <string>

#include "fanout/library_metrics.hpp"
#include "fanout/metrics.hpp"

namespace fanout {

namespace detail {
template <class T, class F>
std::function<double()> stat_reader(const T& component, F field) {
  return [&component, field] { return static_cast<double>(component.stats().*field); };
}
template <class T, class F>
std::function<double()> seconds_reader(const T& component, F field) {
  return [&component, field] { return std::chrono::duration<double>(component.stats().*field).count(); };
}
}  // namespace detail

/// fanout_processor_*: queued messages and bytes, lag (age of the oldest queued message), submitted,
/// processed, emitted, dropped, errors, blocked submits and the time they waited.
template <class Processor>
MetricRegistrations add_processor_metrics(MetricsRegistry& r, const Processor& p, const MetricLabels& labels = {}) {
  using S = typename Processor::Stats;
  using detail::seconds_reader;
  using detail::stat_reader;
  MetricRegistrations out;
  out.push_back(r.add_gauge("fanout_processor_queue_depth", "Messages waiting for a processor worker", labels,
                            stat_reader(p, &S::queued)));
  out.push_back(r.add_gauge("fanout_processor_queued_bytes", "Payload bytes waiting for a processor worker", labels,
                            stat_reader(p, &S::queued_bytes)));
  out.push_back(r.add_gauge("fanout_processor_lag_seconds", "Age of the oldest message waiting for a worker", labels,
                            seconds_reader(p, &S::lag)));
  out.push_back(r.add_counter("fanout_processor_submitted_total", "Messages given to the processor", labels,
                              stat_reader(p, &S::submitted)));
  out.push_back(r.add_counter("fanout_processor_processed_total", "Handler calls that returned normally", labels,
                              stat_reader(p, &S::processed)));
  out.push_back(r.add_counter("fanout_processor_emitted_total", "Outputs the handlers published", labels,
                              stat_reader(p, &S::emitted)));
  out.push_back(r.add_counter("fanout_processor_dropped_total", "Messages the overflow policy discarded", labels,
                              stat_reader(p, &S::dropped)));
  out.push_back(r.add_counter("fanout_processor_errors_total", "Handler or publish calls that threw", labels,
                              stat_reader(p, &S::errors)));
  out.push_back(r.add_counter("fanout_processor_blocked_total", "Submits that waited for room (overflow = block)",
                              labels, stat_reader(p, &S::blocked)));
  out.push_back(r.add_counter("fanout_processor_blocked_seconds_total", "Time submits spent waiting for room", labels,
                              seconds_reader(p, &S::blocked_time)));
  return out;
}

/// fanout_sink_*{sink="<name>"}: queued records and bytes, lag (age of the oldest queued record),
/// offered, written, dropped (queue full), failed, write errors, retries and batches.
template <class Sink>
MetricRegistrations add_sink_metrics(MetricsRegistry& r, const Sink& s, const std::string& name) {
  using S = typename Sink::Stats;
  using detail::seconds_reader;
  using detail::stat_reader;
  const MetricLabels l{{"sink", name}};
  MetricRegistrations out;
  out.push_back(
      r.add_gauge("fanout_sink_queue_depth", "Records waiting for the sink's writer", l, stat_reader(s, &S::queued)));
  out.push_back(r.add_gauge("fanout_sink_queued_bytes", "Bytes of the records waiting for the sink's writer", l,
                            stat_reader(s, &S::queued_bytes)));
  out.push_back(r.add_gauge("fanout_sink_lag_seconds", "Age of the oldest record waiting for the sink's writer", l,
                            seconds_reader(s, &S::lag)));
  out.push_back(r.add_counter("fanout_sink_offered_total", "Records offered to the sink (after its topic filter)", l,
                              stat_reader(s, &S::offered)));
  out.push_back(r.add_counter("fanout_sink_written_total", "Records the sink stored", l, stat_reader(s, &S::written)));
  out.push_back(
      r.add_counter("fanout_sink_dropped_total", "Records lost to a full sink queue", l, stat_reader(s, &S::dropped)));
  out.push_back(r.add_counter("fanout_sink_failed_total", "Records lost to failed or rejected writes, or left at stop",
                              l, stat_reader(s, &S::failed)));
  out.push_back(r.add_counter("fanout_sink_write_errors_total", "Sink writes that did not succeed", l,
                              stat_reader(s, &S::errors)));
  out.push_back(r.add_counter("fanout_sink_retries_total", "Sink writes repeated after a transient error", l,
                              stat_reader(s, &S::retries)));
  out.push_back(
      r.add_counter("fanout_sink_batches_total", "Successful sink batch writes", l, stat_reader(s, &S::batches)));
  return out;
}

}  // namespace fanout

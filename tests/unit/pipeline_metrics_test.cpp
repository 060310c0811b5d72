// Processor and sink series: registered by callback from any component with the stats() fields of
// fanout::Processor / fanout::Sink (stand-ins here with the same Stats layout).
#include <doctest/doctest.h>

#include <fanout/pipeline_metrics.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace {

struct FakeProcessor {
  struct Stats {
    std::size_t queued = 0;
    std::size_t queued_bytes = 0;
    std::uint64_t submitted = 0;
    std::uint64_t processed = 0;
    std::uint64_t emitted = 0;
    std::uint64_t dropped = 0;
    std::uint64_t errors = 0;
    std::uint64_t blocked = 0;
    std::chrono::microseconds blocked_time{0};
    std::chrono::milliseconds lag{0};
  };
  Stats now;
  mutable std::atomic<int> calls{0};
  Stats stats() const {
    ++calls;
    return now;
  }
};

struct FakeSink {
  struct Stats {
    std::size_t queued = 0;
    std::size_t queued_bytes = 0;
    std::uint64_t offered = 0;
    std::uint64_t written = 0;
    std::uint64_t dropped = 0;
    std::uint64_t failed = 0;
    std::uint64_t errors = 0;
    std::uint64_t retries = 0;
    std::uint64_t batches = 0;
    std::chrono::milliseconds lag{0};
  };
  Stats now;
  Stats stats() const { return now; }
};

bool has_line(const std::string& text, const std::string& line) {
  return text.starts_with(line + "\n") || text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("processor series read the processor's stats at scrape time") {
  fanout::MetricsRegistry r;
  FakeProcessor p;
  auto regs = fanout::add_processor_metrics(r, p);
  CHECK(regs.size() == 10);
  CHECK(p.calls == 0);  // nothing is read until a scrape
  p.now.queued = 12;
  p.now.queued_bytes = 3400;
  p.now.submitted = 100;
  p.now.processed = 80;
  p.now.emitted = 160;
  p.now.dropped = 7;
  p.now.errors = 1;
  p.now.blocked = 3;
  p.now.blocked_time = std::chrono::microseconds(1500);
  p.now.lag = std::chrono::milliseconds(250);
  const auto text = r.render();
  CHECK(has_line(text, "fanout_processor_queue_depth 12"));
  CHECK(has_line(text, "fanout_processor_queued_bytes 3400"));
  CHECK(has_line(text, "fanout_processor_lag_seconds 0.25"));
  CHECK(has_line(text, "fanout_processor_submitted_total 100"));
  CHECK(has_line(text, "fanout_processor_processed_total 80"));
  CHECK(has_line(text, "fanout_processor_emitted_total 160"));
  CHECK(has_line(text, "fanout_processor_dropped_total 7"));
  CHECK(has_line(text, "fanout_processor_errors_total 1"));
  CHECK(has_line(text, "fanout_processor_blocked_total 3"));
  CHECK(has_line(text, "fanout_processor_blocked_seconds_total 0.0015"));
  CHECK(has_line(text, "# TYPE fanout_processor_lag_seconds gauge"));
  CHECK(has_line(text, "# TYPE fanout_processor_dropped_total counter"));
  regs.clear();
  CHECK(r.render().empty());
}

TEST_CASE("sink series carry the sink's name; two sinks side by side") {
  fanout::MetricsRegistry r;
  FakeSink journal, pg;
  journal.now.written = 1000;
  journal.now.lag = std::chrono::milliseconds(0);
  pg.now.queued = 5000;
  pg.now.queued_bytes = 1'000'000;
  pg.now.dropped = 42;
  pg.now.errors = 2;
  pg.now.retries = 2;
  pg.now.lag = std::chrono::milliseconds(3200);
  auto a = fanout::add_sink_metrics(r, journal, "journal");
  auto b = fanout::add_sink_metrics(r, pg, "postgres");
  const auto text = r.render();
  CHECK(has_line(text, "fanout_sink_written_total{sink=\"journal\"} 1000"));
  CHECK(has_line(text, "fanout_sink_lag_seconds{sink=\"journal\"} 0"));
  CHECK(has_line(text, "fanout_sink_queue_depth{sink=\"postgres\"} 5000"));
  CHECK(has_line(text, "fanout_sink_queued_bytes{sink=\"postgres\"} 1000000"));
  CHECK(has_line(text, "fanout_sink_dropped_total{sink=\"postgres\"} 42"));
  CHECK(has_line(text, "fanout_sink_write_errors_total{sink=\"postgres\"} 2"));
  CHECK(has_line(text, "fanout_sink_retries_total{sink=\"postgres\"} 2"));
  CHECK(has_line(text, "fanout_sink_lag_seconds{sink=\"postgres\"} 3.2"));
  // The same name twice is a misuse caught at registration.
  CHECK_THROWS_AS((void)fanout::add_sink_metrics(r, pg, "postgres"), std::invalid_argument);
  b.clear();
  CHECK(r.render().find("postgres") == std::string::npos);
  CHECK(has_line(r.render(), "fanout_sink_written_total{sink=\"journal\"} 1000"));
}

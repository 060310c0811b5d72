#include "sinks.hpp"

#include <fanout/journal_sink.hpp>
#if FANOUT_WITH_POSTGRES
#include <fanout/postgres_sink.hpp>
#include <fanout/redact.hpp>
#endif

#include "log.hpp"

namespace relay {

std::unique_ptr<fanout::SinkSet> build_sinks(const Config& config) {
  return building(2, "bad sink configuration", [&] {
    auto sinks = std::make_unique<fanout::SinkSet>();
    for (const auto& sc : config.sinks) {
      auto options = sc.options;
      options.on_error = [](std::string_view e) {
        log_warn("{}", fanout::redact_text(e));
      };  // a conninfo may hold a password
      std::unique_ptr<fanout::SinkWriter> writer;
      if (sc.type == "journal") writer = std::make_unique<fanout::JournalWriter>(sc.journal);
#if FANOUT_WITH_POSTGRES
      if (sc.type == "postgres") writer = std::make_unique<fanout::PostgresWriter>(sc.postgres);
#endif
      sinks->add(std::move(writer), options);
      log("sink {}: {} ({}){}", options.name, sc.type,
          sc.type == "journal" ? sc.journal.path : fmt::format("table {}", sc.postgres.table),
          options.spill_only ? ", spill only" : "");
    }
    if (!config.sinks.empty() && config.redis.enabled && !config.redis.subscribe_all)
      log("sinks record the topics this edge follows (those with clients); [redis] subscribe_all = true records all");
    for (std::size_t i = 0; i < config.sinks.size(); ++i)
      for (std::size_t j = 0; j < config.sinks.size(); ++j)
        if (!config.sinks[i].spill_to.empty() && config.sinks[i].spill_to == config.sinks[j].options.name)
          (*sinks)[i].spill_to((*sinks)[j]);
    return sinks;
  });
}

void attach_sinks(fanout::Hub& hub, fanout::SinkSet& sinks) {
  if (sinks.empty()) return;
  hub.add_publish_observer([&sinks](const fanout::Hub::Published& m) { sinks.offer(m.topic, m.payload, m.seq); });
}

void report_sinks(const fanout::SinkSet& sinks) {
  for (auto& s : sinks.sinks()) {
    const auto k = s->stats();
    log("sink {}: offered {} written {} dropped {} failed {} retries {} spilled {}", s->options().name, k.offered,
        k.written, k.dropped, k.failed, k.retries, k.spilled);
  }
}

}  // namespace relay

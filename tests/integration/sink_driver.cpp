// fanout-sink-driver: one Sink (journal or PostgreSQL) driven through stdin, for the sink
// integration tests (README.md here). Prints `ready` once the sink runs; then one command per line:
//   {"op":"offer","topic":"t","seq":1,"payload":"..."}   (seq optional)  no answer
//   {"op":"stats"}                                                       stats {"offered":..,...}
//   {"op":"stop"} or EOF    stops the sink (drain bounded by stop-timeout-ms), prints stats, exits 0
// Options, key=value: journal=PATH max-file-bytes=N max-files=N | postgres=CONNINFO table=NAME
//   statement-timeout-ms=N; max-queued=N max-batch=N overflow=drop_newest|drop_oldest
//   retry-initial-ms=N retry-max-ms=N stop-timeout-ms=N topics=a,b*
#include <fanout/journal_sink.hpp>
#include <fanout/sink.hpp>
#if FANOUT_WITH_POSTGRES
#include <fanout/postgres_sink.hpp>
#endif

#include <fmt/format.h>
#include <simdjson.h>

#include <iostream>
#include <map>
#include <string>

namespace {

std::string stats_json(const fanout::Sink::Stats& s) {
  return fmt::format(
      R"({{"offered":{},"written":{},"dropped":{},"failed":{},"errors":{},"retries":{},"batches":{},"queued":{}}})",
      s.offered, s.written, s.dropped, s.failed, s.errors, s.retries, s.batches, s.queued);
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq == std::string::npos) {
      fmt::print(stderr, "sink-driver: argument '{}' is not key=value\n", a);
      return 2;
    }
    opt[a.substr(0, eq)] = a.substr(eq + 1);
  }
  auto num = [&](const char* key, std::size_t def) { return opt.count(key) ? std::stoull(opt[key]) : def; };
  auto ms = [&](const char* key, std::chrono::milliseconds def) {
    return opt.count(key) ? std::chrono::milliseconds(std::stoll(opt[key])) : def;
  };

  fanout::Sink::Options so;
  so.name = opt.count("journal") ? "journal" : "postgres";
  so.max_queued = num("max-queued", so.max_queued);
  so.max_batch = num("max-batch", so.max_batch);
  so.retry_initial = ms("retry-initial-ms", so.retry_initial);
  so.retry_max = ms("retry-max-ms", so.retry_max);
  so.stop_timeout = ms("stop-timeout-ms", so.stop_timeout);
  if (opt["overflow"] == "drop_oldest") so.overflow = fanout::Sink::Overflow::drop_oldest;
  if (opt.count("topics")) {
    std::string t = opt["topics"];
    for (std::size_t p = 0; p <= t.size();) {
      const auto c = std::min(t.find(',', p), t.size());
      so.topics.push_back(t.substr(p, c - p));
      p = c + 1;
    }
  }
  so.on_error = [](std::string_view e) { fmt::print(stderr, "sink-driver: {}\n", e); };

  std::unique_ptr<fanout::SinkWriter> writer;
  if (opt.count("journal")) {
    fanout::JournalWriter::Options jo;
    jo.path = opt["journal"];
    jo.max_file_bytes = num("max-file-bytes", jo.max_file_bytes);
    jo.max_files = static_cast<unsigned>(num("max-files", jo.max_files));
    writer = std::make_unique<fanout::JournalWriter>(jo);
  } else if (opt.count("postgres")) {
#if FANOUT_WITH_POSTGRES
    fanout::PostgresWriter::Options po;
    po.conninfo = opt["postgres"];
    if (opt.count("table")) po.table = opt["table"];
    po.statement_timeout = ms("statement-timeout-ms", po.statement_timeout);
    writer = std::make_unique<fanout::PostgresWriter>(po);
#else
    fmt::print(stderr, "sink-driver: built without FANOUT_WITH_POSTGRES\n");
    return 2;
#endif
  } else {
    fmt::print(stderr, "sink-driver: needs journal=PATH or postgres=CONNINFO\n");
    return 2;
  }
  fanout::SinkSet sinks;
  sinks.add(std::move(writer), so);
  sinks.start();
  std::cout << "ready" << std::endl;

  simdjson::dom::parser parser;
  for (std::string line; std::getline(std::cin, line);) {
    simdjson::dom::element cmd;
    std::string_view op;
    if (parser.parse(line).get(cmd) || cmd["op"].get(op)) {
      fmt::print(stderr, "sink-driver: bad command {}\n", line);
      return 2;
    }
    if (op == "offer") {
      std::string_view topic, payload;
      if (cmd["topic"].get(topic) || cmd["payload"].get(payload)) {
        fmt::print(stderr, "sink-driver: offer needs topic and payload\n");
        return 2;
      }
      std::optional<std::uint64_t> seq;
      if (std::uint64_t s = 0; !cmd["seq"].get(s)) seq = s;
      sinks.offer(topic, payload, seq);
    } else if (op == "stats") {
      std::cout << "stats " << stats_json(sinks[0].stats()) << std::endl;
    } else if (op == "stop") {
      break;
    }
  }
  sinks.stop();
  std::cout << "stopped " << stats_json(sinks[0].stats()) << std::endl;
  return 0;
}

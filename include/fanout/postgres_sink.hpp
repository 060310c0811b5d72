// fanout/postgres_sink.hpp — stores published messages in PostgreSQL (libpq), one COPY per batch.
//
// Rows go to a table (created when missing, unless create_table is false):
//   CREATE TABLE fanout_messages (id bigserial PRIMARY KEY, time timestamptz NOT NULL,
//                                 topic text NOT NULL, seq bigint, payload text NOT NULL)
// Each batch is one `COPY table (time, topic, seq, payload) FROM STDIN`: a single statement, so a
// batch is stored entirely or not at all. Connection trouble, lock timeouts, cancellations and
// server shutdown are transient (WriteResult::retry: the Sink backs off, reconnects and writes the
// batch again); other errors fail the batch. A payload PostgreSQL cannot store as text (not UTF-8,
// or holding a NUL byte) is skipped and counted as failed, not stored mangled.
//
// Delivery is at-least-once across a connection lost after COPY's end was sent but before the
// server's answer arrived (the batch may have been committed); every other case is exactly-once.
//
//   sinks.add(std::make_unique<fanout::PostgresWriter>(fanout::PostgresWriter::Options{
//                 .conninfo = "host=/run/postgresql dbname=market"}),
//             {.name = "postgres", .topics = {"trades:*"}});
//
// Thread safety: a SinkWriter; write() and close() on the Sink's thread, interrupt() from any.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "fanout/export.hpp"
#include "fanout/sink.hpp"

struct pg_conn;
struct pg_cancel;

namespace fanout {

class FANOUT_API PostgresWriter final : public SinkWriter {
 public:
  struct Options {
    std::string conninfo = "";              // libpq connection string or URI; empty: libpq's defaults (PG* variables)
    std::string table = "fanout_messages";  // one identifier, quoted as given
    bool create_table = true;               // CREATE TABLE IF NOT EXISTS on connect
    /// statement_timeout for the session: a COPY stuck longer (e.g. on a locked table) is cancelled
    /// by the server and retried. 0: none.
    std::chrono::milliseconds statement_timeout{0};
  };

  /// Does not connect: the first write() does (and reconnects after a lost connection).
  explicit PostgresWriter(Options options);
  ~PostgresWriter() override;

  WriteResult write(std::span<const SinkRecordRef> batch) override;
  void interrupt() noexcept override;
  void close() noexcept override;

  /// COPY text-format line for `r` (time, topic, seq, payload), appended to `out`. False when the
  /// payload cannot be stored as text. Exposed for tests.
  static bool format_copy_line(const SinkRecord& r, std::string& out);

 private:
  WriteResult connect();
  void disconnect() noexcept;

  Options options_;
  pg_conn* conn_ = nullptr;
  std::mutex cancel_mutex_;  // guards cancel_ against interrupt()
  pg_cancel* cancel_ = nullptr;
  bool table_ready_ = false;
  std::string buffer_;
};

}  // namespace fanout

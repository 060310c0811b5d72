#include "fanout/postgres_sink.hpp"

#include <libpq-fe.h>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>
#include <memory>

namespace fanout {
namespace {

std::string trimmed(const char* s) {
  std::string r = s ? s : "";
  while (!r.empty() && (r.back() == '\n' || r.back() == ' ')) r.pop_back();
  return r;
}

// SQLSTATE classes worth retrying: connection exceptions, transaction rollbacks (deadlock,
// serialization), insufficient resources, operator intervention (cancel, shutdown), system errors,
// and lock_not_available.
bool transient_sqlstate(const char* state) {
  if (!state || std::strlen(state) != 5) return true;  // no SQLSTATE: a client-side (connection) error
  const std::string_view s(state);
  return s.starts_with("08") || s.starts_with("40") || s.starts_with("53") || s.starts_with("57") ||
         s.starts_with("58") || s == "55P03";
}

void append_copy_text(std::string_view s, std::string& out) {
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
}

bool storable(std::string_view s) {
  return s.find('\0') == std::string_view::npos && simdjson::validate_utf8(s.data(), s.size());
}

}  // namespace

PostgresWriter::PostgresWriter(Options options) : options_(std::move(options)) {
  if (options_.table.empty()) throw std::invalid_argument("postgres sink: empty table name");
}

PostgresWriter::~PostgresWriter() { close(); }

bool PostgresWriter::format_copy_line(const SinkRecord& r, std::string& out) {
  if (!storable(r.topic) || !storable(r.payload)) return false;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(r.time.time_since_epoch()).count();
  const auto secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "{:%Y-%m-%d %H:%M:%S}.{:06}+00\t", tm, us % 1'000'000);
  append_copy_text(r.topic, out);
  out += '\t';
  if (r.seq)
    fmt::format_to(std::back_inserter(out), "{}", *r.seq);
  else
    out += "\\N";
  out += '\t';
  append_copy_text(r.payload, out);
  out += '\n';
  return true;
}

void PostgresWriter::disconnect() noexcept {
  {
    std::lock_guard lock(cancel_mutex_);
    if (cancel_) PQfreeCancel(cancel_);
    cancel_ = nullptr;
  }
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

void PostgresWriter::close() noexcept { disconnect(); }

void PostgresWriter::interrupt() noexcept {
  std::lock_guard lock(cancel_mutex_);
  if (!cancel_) return;
  char error[256];
  PQcancel(cancel_, error, sizeof error);  // best effort: the write then fails with 57014 and is abandoned
}

WriteResult PostgresWriter::connect() {
  disconnect();
  conn_ = PQconnectdb(options_.conninfo.c_str());
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    auto r =
        WriteResult::retry(fmt::format("cannot connect: {}", trimmed(conn_ ? PQerrorMessage(conn_) : "out of memory")));
    disconnect();
    return r;
  }
  {
    std::lock_guard lock(cancel_mutex_);
    cancel_ = PQgetCancel(conn_);
  }
  auto exec = [&](const std::string& sql) -> WriteResult {
    std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn_, sql.c_str()), &PQclear);
    if (PQresultStatus(res.get()) == PGRES_COMMAND_OK) return WriteResult::ok();
    const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
    auto msg = fmt::format("{}: {}", sql.substr(0, sql.find(' ', 7)), trimmed(PQerrorMessage(conn_)));
    return transient_sqlstate(state) || PQstatus(conn_) != CONNECTION_OK ? WriteResult::retry(std::move(msg))
                                                                         : WriteResult::fail(std::move(msg));
  };
  if (options_.statement_timeout.count() > 0) {
    if (auto r = exec(fmt::format("SET statement_timeout = {}", options_.statement_timeout.count()));
        r.kind != WriteResult::Kind::ok) {
      disconnect();
      return r;
    }
  }
  if (options_.create_table && !table_ready_) {
    char* quoted = PQescapeIdentifier(conn_, options_.table.data(), options_.table.size());
    const std::string table = quoted ? quoted : "";
    PQfreemem(quoted);
    auto r = exec(fmt::format(
        "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, time timestamptz NOT NULL, topic text NOT NULL, "
        "seq bigint, payload text NOT NULL)",
        table));
    if (r.kind != WriteResult::Kind::ok) {
      disconnect();
      return r;
    }
    table_ready_ = true;
  }
  return WriteResult::ok();
}

WriteResult PostgresWriter::write(std::span<const SinkRecordRef> batch) {
  buffer_.clear();
  std::size_t rejected = 0;
  for (const auto& r : batch)
    if (!format_copy_line(*r, buffer_)) ++rejected;
  const std::string rejected_why = "topic or payload not storable as text (a NUL byte, or not UTF-8)";
  if (rejected == batch.size()) return {WriteResult::Kind::ok, rejected_why, rejected};

  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    if (auto r = connect(); r.kind != WriteResult::Kind::ok) return r;
  }
  char* quoted = PQescapeIdentifier(conn_, options_.table.data(), options_.table.size());
  const std::string sql = fmt::format("COPY {} (time, topic, seq, payload) FROM STDIN", quoted ? quoted : "");
  PQfreemem(quoted);

  auto failure = [&](PGresult* res, std::string_view what) {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    auto msg = fmt::format("{}: {}", what, trimmed(PQerrorMessage(conn_)));
    const bool lost = PQstatus(conn_) != CONNECTION_OK;
    if (lost) disconnect();  // the next attempt reconnects
    return lost || transient_sqlstate(state) ? WriteResult::retry(std::move(msg)) : WriteResult::fail(std::move(msg));
  };

  std::unique_ptr<PGresult, decltype(&PQclear)> start(PQexec(conn_, sql.c_str()), &PQclear);
  if (PQresultStatus(start.get()) != PGRES_COPY_IN) return failure(start.get(), "COPY");
  if (PQputCopyData(conn_, buffer_.data(), static_cast<int>(buffer_.size())) != 1 ||
      PQputCopyEnd(conn_, nullptr) != 1) {
    auto r = failure(nullptr, "COPY data");
    if (conn_) disconnect();  // the COPY state is unknown: start over
    return r;
  }
  WriteResult result{WriteResult::Kind::ok, rejected ? rejected_why : std::string(), rejected};
  // Read every result until null, so the connection is ready for the next batch.
  while (PGresult* res = PQgetResult(conn_)) {
    std::unique_ptr<PGresult, decltype(&PQclear)> owned(res, &PQclear);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && result.kind == WriteResult::Kind::ok) result = failure(res, "COPY");
    if (!conn_) break;
  }
  return result;
}

}  // namespace fanout

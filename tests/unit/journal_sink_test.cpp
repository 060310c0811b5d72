// JournalWriter: line format and escaping, size-based rotation, retry after a failed open.
#include <doctest/doctest.h>

#include <fanout/journal_sink.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "fanout-journal-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> r;
  for (std::string l; std::getline(in, l);) r.push_back(l);
  return r;
}

fanout::SinkRecordRef record(std::string topic, std::string payload, std::optional<std::uint64_t> seq,
                             std::int64_t us = 1700000000123456) {
  return std::make_shared<const fanout::SinkRecord>(fanout::SinkRecord{
      std::move(topic), std::move(payload), seq, std::chrono::system_clock::time_point(std::chrono::microseconds(us))});
}

}  // namespace

TEST_CASE("journal: one JSON line per message, payload escaped exactly, non-UTF-8 as base64") {
  std::string out;
  fanout::JournalWriter::format_line(*record("trades:BTC", R"({"px":"1"})", 42), out);
  CHECK(out ==
        "{\"time_us\":1700000000123456,\"topic\":\"trades:BTC\",\"seq\":42,\"payload\":\"{\\\"px\\\":\\\"1\\\"}\"}\n");
  out.clear();
  fanout::JournalWriter::format_line(*record("t", "a\\b\n\t\x01\xc3\xa9", std::nullopt, 5), out);
  CHECK(out == "{\"time_us\":5,\"topic\":\"t\",\"payload\":\"a\\\\b\\n\\t\\u0001\xc3\xa9\"}\n");
  out.clear();
  fanout::JournalWriter::format_line(*record("t", std::string("\xff\x00\x01\x02", 4), 1, 5), out);
  CHECK(out == "{\"time_us\":5,\"topic\":\"t\",\"seq\":1,\"payload_base64\":\"/wABAg==\"}\n");
}

TEST_CASE("journal: appends across writers and rotates by size, keeping max_files old files") {
  TempDir dir;
  const auto path = dir.path / "j.jsonl";
  std::string one;
  fanout::JournalWriter::format_line(*record("t", "0000", 0), one);
  const std::size_t line = one.size();  // every line below has the same length
  {
    fanout::JournalWriter w({.path = path.string(), .max_file_bytes = 3 * line, .max_files = 2});
    for (int i = 0; i < 10; ++i) {
      char p[5];
      std::snprintf(p, sizeof p, "%04d", i);
      std::vector<fanout::SinkRecordRef> batch{record("t", p, i)};
      REQUIRE(w.write(batch).kind == fanout::WriteResult::Kind::ok);
    }
  }
  // 10 lines of 3 per file: the current file has 9's line, .1 has 6..8, .2 has 3..5; 0..2 are gone.
  CHECK(lines_of(path).size() == 1);
  CHECK(lines_of(path.string() + ".1").size() == 3);
  CHECK(lines_of(path.string() + ".2").size() == 3);
  CHECK(!fs::exists(path.string() + ".3"));
  CHECK(lines_of(path.string() + ".2").front().find("\"seq\":3,") != std::string::npos);
  CHECK(lines_of(path).front().find("\"payload\":\"0009\"") != std::string::npos);
  for (auto f : {path.string(), path.string() + ".1", path.string() + ".2"}) CHECK(fs::file_size(f) <= 3 * line);
  {  // a new writer appends to the current file
    fanout::JournalWriter w({.path = path.string(), .max_file_bytes = 3 * line, .max_files = 2});
    std::vector<fanout::SinkRecordRef> batch{record("t", "0010", 10)};
    REQUIRE(w.write(batch).kind == fanout::WriteResult::Kind::ok);
  }
  CHECK(lines_of(path).size() == 2);
}

TEST_CASE("journal: a directory that does not exist yet is a transient error; the Sink retries until it does") {
  TempDir dir;
  const auto path = dir.path / "later" / "j.jsonl";
  {
    fanout::JournalWriter w({.path = path.string()});
    std::vector<fanout::SinkRecordRef> batch{record("t", "x", 1)};
    const auto r = w.write(batch);
    CHECK(r.kind == fanout::WriteResult::Kind::retry);
    CHECK(r.error.find("cannot open") != std::string::npos);
  }
  fanout::Sink sink(std::make_unique<fanout::JournalWriter>(fanout::JournalWriter::Options{.path = path.string()}),
                    {.retry_initial = std::chrono::milliseconds(5),
                     .retry_max = std::chrono::milliseconds(20),
                     .stop_timeout = std::chrono::seconds(20),
                     .on_error = [](std::string_view) {}});
  sink.start();
  for (int i = 0; i < 100; ++i) sink.offer(record("t", std::to_string(i), i));
  for (int i = 0; i < 2000 && sink.stats().errors == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(sink.stats().errors > 0);
  fs::create_directory(dir.path / "later");
  sink.stop();
  CHECK(sink.stats().written == 100);
  const auto lines = lines_of(path);
  REQUIRE(lines.size() == 100);
  CHECK(lines[99].find("\"payload\":\"99\"") != std::string::npos);
}

TEST_CASE("journal: bad options are refused") {
  CHECK_THROWS_AS(fanout::JournalWriter({.path = ""}), std::invalid_argument);
  CHECK_THROWS_AS(fanout::JournalWriter({.path = "x", .max_file_bytes = 0}), std::invalid_argument);
}

TEST_CASE("journal: a batch that fails half-way at a rotation is resumed, not duplicated, on retry") {
  TempDir dir;
  const auto path = dir.path / "j.jsonl";
  std::string one;
  fanout::JournalWriter::format_line(*record("t", "0", 0), one);
  // PATH.1 is a non-empty directory: renaming PATH onto it fails, so the rotation fails.
  fs::create_directories(path.string() + ".1/blocker");
  fanout::JournalWriter w({.path = path.string(), .max_file_bytes = 3 * one.size(), .max_files = 1});
  std::vector<fanout::SinkRecordRef> batch;
  for (int i = 0; i < 6; ++i) batch.push_back(record("t", std::to_string(i), i));
  const auto r = w.write(batch);
  CHECK(r.kind == fanout::WriteResult::Kind::retry);
  CHECK(r.error.find("cannot rotate") != std::string::npos);
  CHECK(lines_of(path).size() == 3);
  fs::remove_all(path.string() + ".1");
  REQUIRE(w.write(batch).kind == fanout::WriteResult::Kind::ok);  // the Sink's retry: the same batch
  const auto old = lines_of(path.string() + ".1"), current = lines_of(path);
  REQUIRE(old.size() == 3);
  REQUIRE(current.size() == 3);
  CHECK(old[0].find("\"payload\":\"0\"") != std::string::npos);
  CHECK(current[0].find("\"payload\":\"3\"") != std::string::npos);
  CHECK(current[2].find("\"payload\":\"5\"") != std::string::npos);
}

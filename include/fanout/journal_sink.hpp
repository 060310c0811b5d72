// fanout/journal_sink.hpp — an append-only JSON-lines journal of published messages, rotated by size.
//
// One line per message:
//   {"time_us":1700000000123456,"topic":"trades:BTC-USDT","seq":42,"payload":"{\"px\":\"1\"}"}
// `seq` is left out when the message has none. The payload is a JSON string holding the exact bytes
// (read it back with json.loads(line)["payload"]); a payload that is not UTF-8 is written as
// "payload_base64" instead. When the next line would make the file larger than max_file_bytes, it
// is renamed to PATH.1 (PATH.1 to PATH.2, ... keeping max_files old files) and a new PATH is
// started; only a single line longer than the limit makes a file larger (it gets a file to itself).
//
//   sinks.add(std::make_unique<fanout::JournalWriter>(fanout::JournalWriter::Options{.path =
//   "/var/lib/fanout/j.jsonl"}),
//             {.name = "journal"});
//
// A failed write (disk full) truncates the partial lines away and reports a transient error; the
// Sink retries the batch, and the retry resumes after the lines that did reach a file (a batch
// can span a rotation): no torn or duplicated lines.
// Thread safety: a SinkWriter, used by its Sink's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "fanout/export.hpp"
#include "fanout/sink.hpp"

namespace fanout {

class FANOUT_API JournalWriter final : public SinkWriter {
 public:
  struct Options {
    std::string path = "fanout-journal.jsonl";
    std::uint64_t max_file_bytes = 64u << 20;  // rotate before a line would make the file larger
    unsigned max_files = 8;                    // rotated files kept (PATH.1 .. PATH.N); 0: none kept
    bool fsync = false;                        // fsync after every batch (durable, slower)
  };

  /// Throws std::invalid_argument for an empty path or a zero max_file_bytes. The file is opened
  /// (created, appended to) on the first write.
  explicit JournalWriter(Options options);
  ~JournalWriter() override;

  WriteResult write(std::span<const SinkRecordRef> batch) override;
  void close() noexcept override;

  /// Appends the journal line for `r` (with its '\n') to `out`. Exposed for tests and tools.
  static void format_line(const SinkRecord& r, std::string& out);

 private:
  WriteResult open_file();
  WriteResult rotate();
  WriteResult append();  // buffer_ to the file, all or nothing

  Options options_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string buffer_, line_;
  const SinkRecord* resume_first_ = nullptr;  // the batch that failed after some of its lines were written
  std::size_t resume_done_ = 0;               // how many of them
};

}  // namespace fanout

#include "fanout/journal_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "fanout/detail/json.hpp"

namespace fanout {
namespace {

void append_base64(std::string_view s, std::string& out) {
  static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(s[k])); };
  for (; i + 3 <= s.size(); i += 3) {
    const unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += k_alphabet[v >> 18 & 63];
    out += k_alphabet[v >> 12 & 63];
    out += k_alphabet[v >> 6 & 63];
    out += k_alphabet[v & 63];
  }
  if (const std::size_t rest = s.size() - i) {
    const unsigned v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out += k_alphabet[v >> 18 & 63];
    out += k_alphabet[v >> 12 & 63];
    out += rest == 2 ? k_alphabet[v >> 6 & 63] : '=';
    out += '=';
  }
}

std::string errno_text(std::string_view what, const std::string& path) {
  return fmt::format("{} {}: {}", what, path, std::strerror(errno));
}

}  // namespace

JournalWriter::JournalWriter(Options options) : options_(std::move(options)) {
  if (options_.path.empty()) throw std::invalid_argument("journal: empty path");
  if (options_.max_file_bytes == 0) throw std::invalid_argument("journal: max_file_bytes must be positive");
}

JournalWriter::~JournalWriter() { close(); }

void JournalWriter::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void JournalWriter::format_line(const SinkRecord& r, std::string& out) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(r.time.time_since_epoch()).count();
  fmt::format_to(std::back_inserter(out), R"({{"time_us":{},"topic":)", us);
  detail::append_json_string(out, r.topic);
  if (r.seq) fmt::format_to(std::back_inserter(out), R"(,"seq":{})", *r.seq);
  if (simdjson::validate_utf8(r.payload.data(), r.payload.size())) {
    out += R"(,"payload":)";
    detail::append_json_string(out, r.payload);
  } else {
    out += R"(,"payload_base64":")";
    append_base64(r.payload, out);
    out += '"';
  }
  out += "}\n";
}

WriteResult JournalWriter::open_file() {
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return WriteResult::retry(errno_text("cannot open", options_.path));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    auto r = WriteResult::retry(errno_text("cannot stat", options_.path));
    close();
    return r;
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  return WriteResult::ok();
}

WriteResult JournalWriter::rotate() {
  close();
  const auto name = [&](unsigned i) { return i == 0 ? options_.path : fmt::format("{}.{}", options_.path, i); };
  if (options_.max_files == 0) {
    if (::unlink(options_.path.c_str()) != 0 && errno != ENOENT)
      return WriteResult::retry(errno_text("cannot remove", options_.path));
  } else {
    // PATH.(N-1) -> PATH.N (replacing the oldest), ..., PATH -> PATH.1
    for (unsigned i = options_.max_files; i > 0; --i) {
      const auto from = name(i - 1);
      if (::rename(from.c_str(), name(i).c_str()) != 0 && errno != ENOENT)
        return WriteResult::retry(errno_text("cannot rotate", from));
    }
  }
  return open_file();
}

WriteResult JournalWriter::write(std::span<const SinkRecordRef> batch) {
  if (batch.empty()) return WriteResult::ok();
  // A retry of a batch that failed half-way (after a rotation) resumes after the lines already written.
  std::size_t i = resume_first_ == batch.front().get() ? std::min(resume_done_, batch.size()) : 0;
  resume_first_ = nullptr;
  auto remember = [&](WriteResult r, std::size_t done) {
    resume_first_ = batch.front().get();
    resume_done_ = done;
    return r;
  };
  while (i < batch.size()) {
    if (fd_ < 0) {
      if (auto r = open_file(); r.kind != WriteResult::Kind::ok) return remember(std::move(r), i);
    }
    // As many lines as fit in the current file; a file always takes at least one line.
    buffer_.clear();
    const std::size_t first = i;
    for (; i < batch.size(); ++i) {
      line_.clear();
      format_line(*batch[i], line_);
      if (size_ + buffer_.size() + line_.size() > options_.max_file_bytes && size_ + buffer_.size() > 0) break;
      buffer_ += line_;
    }
    if (!buffer_.empty()) {
      if (auto r = append(); r.kind != WriteResult::Kind::ok) return remember(std::move(r), first);
    }
    if (i < batch.size()) {
      if (auto r = rotate(); r.kind != WriteResult::Kind::ok) return remember(std::move(r), i);
    }
  }
  return WriteResult::ok();
}

WriteResult JournalWriter::append() {
  const std::uint64_t start = size_;
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto r = WriteResult::retry(errno_text("cannot write", options_.path));
      // All or nothing: cut the partial chunk off so the retry does not leave a torn line.
      if (::ftruncate(fd_, static_cast<off_t>(start)) != 0) close();
      return r;
    }
    done += static_cast<std::size_t>(n);
  }
  if (options_.fsync && ::fsync(fd_) != 0) {
    auto r = WriteResult::retry(errno_text("cannot fsync", options_.path));
    if (::ftruncate(fd_, static_cast<off_t>(start)) != 0) close();
    return r;
  }
  size_ += buffer_.size();
  return WriteResult::ok();
}

}  // namespace fanout

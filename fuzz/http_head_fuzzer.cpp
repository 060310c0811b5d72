// The request head parser and the handshake decision (HttpRequest, HandshakeReader), fed the input
// twice: in one piece and in pieces whose sizes come from the input, with request bodies refused or
// read (up to 64 bytes, as on a listener with max_request_body_bytes). Besides memory errors, it
// fails when the two disagree: the answer to a request must not depend on how TCP splits it.
#include <fanout/detail/handshake_reader.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

namespace {

const std::vector<std::string> k_paths = {"/ws"};

struct Verdict {
  fanout::detail::HandshakeReader::Kind kind;
  int status;
  std::string body;
  bool operator==(const Verdict&) const = default;
};

/// Decisions for `data` delivered in pieces of the given sizes (cycled); stops at the first upgrade
/// or answer, as the session does (what follows an upgrade is WebSocket, an answer closes).
std::vector<Verdict> decisions(std::span<const std::byte> data, std::span<const std::uint8_t> sizes,
                               std::size_t max_body) {
  using Kind = fanout::detail::HandshakeReader::Kind;
  fanout::detail::HandshakeReader reader(1024, max_body, k_paths);
  std::vector<Verdict> out;
  std::size_t at = 0, piece = 0;
  while (at < data.size()) {
    const std::size_t n = sizes.empty() ? data.size() - at : std::max<std::size_t>(1, sizes[piece++ % sizes.size()]);
    auto chunk = data.subspan(at, std::min(n, data.size() - at));
    at += chunk.size();
    while (!chunk.empty()) {
      const auto d = reader.feed(chunk);
      if (d.kind == Kind::need_more) break;
      if (d.kind == Kind::plain || d.kind == Kind::upgrade) {
        // Touch what the session reads from the request.
        const auto& r = reader.request();
        volatile std::size_t sink = r.method().size() + r.path().size() + r.query().size();
        (void)sink;
        (void)r.header("Sec-WebSocket-Key");
        (void)r.header_has_token("Connection", "close");
      }
      out.push_back(
          {d.kind, d.answer.status, d.kind == Kind::answer ? std::string() : std::string(reader.request().body())});
      if (d.kind != Kind::plain) return out;
      reader.release();
      chunk = chunk.subspan(d.consumed);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // The first bytes (up to 4) are the piece sizes (the first one's high bit: bodies allowed); the
  // rest is the request stream.
  const std::size_t k = std::min<std::size_t>(1 + data[0] % 4, size);
  const std::size_t max_body = (data[0] & 0x80) ? 64 : 0;
  const std::span<const std::uint8_t> sizes(data, k);
  const auto stream = std::as_bytes(std::span(data + k, size - k));
  const auto whole = decisions(stream, {}, max_body);
  const auto split = decisions(stream, sizes.subspan(1), max_body);
  if (whole != split) std::abort();
  return 0;
}

// The WebSocket frame reader (wslay fed from memory), in server and client mode: frames in arbitrary pieces.
#include <fanout/detail/frame_reader.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // First byte: the mode (low bit) and the piece size (1..128), so frames arrive split at every
  // boundary over the corpus.
  using Role = fanout::detail::FrameReader::Role;
  const Role role = (data[0] & 1) ? Role::client : Role::server;
  const std::size_t piece = std::size_t{data[0]} / 2 + 1;
  const auto stream = std::as_bytes(std::span(data + 1, size - 1));
  fanout::detail::FrameReader reader(4096, role);
  std::size_t total = 0;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    if (!reader.feed(stream.subspan(at, std::min(piece, stream.size() - at)))) break;
    reader.replies().clear();
    for (auto& m : reader.take_messages()) {
      if (m.payload.size() > 4096) std::abort();  // the limit is a promise
      total += m.payload.size() + static_cast<std::size_t>(m.op);
    }
    if (reader.finished()) break;
    (void)reader.idle();
    (void)reader.close_received();
  }
  volatile std::size_t sink = total;
  (void)sink;
  return 0;
}

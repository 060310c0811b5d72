// The WebSocket frame reader (wslay server mode fed from memory): client frames in arbitrary pieces.
#include <fanout/detail/frame_reader.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // First byte: the piece size (1..256), so frames arrive split at every boundary over the corpus.
  const std::size_t piece = std::size_t{data[0]} + 1;
  const auto stream = std::as_bytes(std::span(data + 1, size - 1));
  fanout::detail::FrameReader reader(4096);
  std::size_t total = 0;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    if (!reader.feed(stream.subspan(at, std::min(piece, stream.size() - at)))) break;
    reader.replies().clear();
    for (auto& [op, payload] : reader.take_messages()) {
      if (payload.size() > 4096) std::abort();  // the limit is a promise
      total += payload.size() + static_cast<std::size_t>(op);
    }
    if (reader.finished()) break;
    (void)reader.idle();
    (void)reader.close_received();
  }
  volatile std::size_t sink = total;
  (void)sink;
  return 0;
}

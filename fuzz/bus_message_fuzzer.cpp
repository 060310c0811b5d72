// Messages between nodes (FO1 wire form): any bytes decode or are refused; what decodes encodes
// back to the same bytes and decodes to the same fields.
#include <fanout/bus_message.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view wire(reinterpret_cast<const char*>(data), size);
  fanout::BusMessage m;
  if (!fanout::decode_bus_message(wire, m)) return 0;
  const auto again = fanout::encode_bus_message(m);
  fanout::BusMessage n;
  if (!fanout::decode_bus_message(again, n)) std::abort();
  if (n.topic != m.topic || n.key != m.key || n.payload != m.payload || n.seq != m.seq || n.fence != m.fence ||
      n.op != m.op)
    std::abort();
  return 0;
}

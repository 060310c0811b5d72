// The Fossil delta decoder (detail/fossil_delta.hpp) on hostile deltas: input is a source and a
// delta, split at the first 0xFF byte (no 0xFF: an empty source). The decoder must refuse or decode
// within its bound, never read outside its inputs. What it decodes must re-encode and round trip.
#include <fanout/detail/fossil_delta.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fossil = fanout::detail::fossil;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto split = in.find('\xFF');
  const std::string_view source = split == std::string_view::npos ? std::string_view{} : in.substr(0, split);
  const std::string_view delta = split == std::string_view::npos ? in : in.substr(split + 1);
  constexpr std::size_t k_max_target = 1 << 16;
  std::string target;
  if (fossil::decode(source, delta, target, k_max_target) != nullptr) return 0;
  if (target.size() > k_max_target) std::abort();
  std::string again;
  fossil::encode(source, target, again);
  std::string back;
  if (fossil::decode(source, again, back, target.size()) != nullptr || back != target) std::abort();
  return 0;
}

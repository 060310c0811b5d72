// The relay's configuration file (TOML through toml++, then the key tables of config.cpp): any
// document is applied or refused with a std::runtime_error, never a crash or another exception.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  relay::Config config;
  try {
    relay::apply_toml(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml", config);
  } catch (const std::runtime_error&) {
    // A refusal with a message for the user: the expected outcome for most inputs.
  }
  return 0;
}

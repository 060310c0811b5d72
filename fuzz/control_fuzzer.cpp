// The client's JSON control messages: every input gets a parse or an error code from the table in
// docs/protocol.md, never a crash; a parse that succeeds has what its op needs.
#include <fanout/detail/control_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using fanout::detail::ControlError;
  using fanout::detail::ControlRequest;
  const auto p = fanout::detail::parse_control(std::string_view(reinterpret_cast<const char*>(data), size));
  if (p.ok) {
    if (p.request.op != ControlRequest::Op::ping && p.request.args.empty()) std::abort();
    for (const auto& s : p.request.since) (void)p.request.since_of(s.topic);
  } else {
    const int code = static_cast<int>(p.error);
    if (code < static_cast<int>(ControlError::bad_json) || code > static_cast<int>(ControlError::unsupported) ||
        p.message.empty())
      std::abort();
  }
  return 0;
}

// The client's JSON control messages: every input gets a parse or an error code from the table in
// docs/protocol.md, never a crash; a parse that succeeds has what its op needs (an rpc: its id and data).
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
    using Op = ControlRequest::Op;
    const auto& r = p.request;
    if ((r.op == Op::subscribe || r.op == Op::unsubscribe) && r.args.empty()) std::abort();
    if ((r.op == Op::auth || r.op == Op::refresh) && r.token.empty()) std::abort();
    if (r.op == Op::presence && r.args.size() != 1) std::abort();
    if (r.op == Op::rpc && (r.id.empty() || r.id.size() > fanout::detail::k_max_rpc_id_bytes || r.data.empty()))
      std::abort();
    if (!p.control) std::abort();  // a parse that succeeded is one of the protocol's ops
    for (const auto& s : p.request.since) (void)p.request.since_of(s.topic);
  } else {
    const int code = static_cast<int>(p.error);
    if (code < static_cast<int>(ControlError::bad_json) || code > static_cast<int>(ControlError::bad_args) ||
        p.message.empty())
      std::abort();
  }
  return 0;
}

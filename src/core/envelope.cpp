#include "fanout/detail/envelope.hpp"

#include <fmt/format.h>

#include "fanout/detail/control_protocol.hpp"

namespace fanout::detail {

void append_json_value(std::string& out, std::string_view payload) {
  const auto first = payload.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (payload[first] == '{' || payload[first] == '['))
    out += payload;
  else
    out += json_string(payload);
}

FrameRef make_envelope(std::string_view topic, std::uint64_t seq, std::string_view key, const FrameRef& verbatim) {
  if (verbatim->opcode() != Opcode::text) return verbatim;
  std::string text = fmt::format(R"({{"topic":{},"seq":{})", json_string(topic), seq);
  if (!key.empty()) text += fmt::format(R"(,"key":{})", json_string(key));
  text += R"(,"data":)";
  append_json_value(text, verbatim->payload_view());
  text += '}';
  return Frame::make(Opcode::text, text, {verbatim->seq(), verbatim->key_hash()});
}

}  // namespace fanout::detail

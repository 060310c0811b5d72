#include "fanout/detail/envelope.hpp"

#include <fmt/format.h>

#include "fanout/detail/json.hpp"

namespace fanout::detail {

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

#include "fanout/detail/delta_forms.hpp"

#include <fmt/format.h>

#include "fanout/detail/fossil_delta.hpp"
#include "fanout/detail/json.hpp"

namespace fanout::detail {

bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07;
    else
      return false;
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

namespace {
std::string head_of(std::string_view topic, std::uint64_t seq, std::string_view key) {
  std::string text = fmt::format(R"({{"topic":{},"seq":{})", json_string(topic), seq);
  if (!key.empty()) text += fmt::format(R"(,"key":{})", json_string(key));
  return text;
}
}  // namespace

FrameRef DeltaForms::make(std::string_view topic, std::uint64_t seq, std::string_view key, const FrameRef& verbatim,
                          const Frame* base, std::size_t max_payload) {
  if (verbatim->opcode() != Opcode::text) return verbatim;
  const std::string_view payload = verbatim->payload_view();
  const Frame::Meta meta{verbatim->seq(), verbatim->key_hash()};
  std::string text = head_of(topic, seq, key);
  text += R"(,"data":)";
  append_json_string(text, payload);
  text += '}';
  FrameRef full = Frame::make(Opcode::text, text, meta);
  Frame& f = const_cast<Frame&>(*full);  // not shared yet
  f.delta_form_ = true;
  if (!base || payload.size() > max_payload || base->payload_view().size() > max_payload) return full;
  const std::string_view before = base->payload_view();
  if (!valid_utf8(payload) || !valid_utf8(before)) return full;
  std::string delta;
  fossil::encode(before, payload, delta);
  if (delta.size() >= payload.size()) return full;
  text = head_of(topic, seq, key);
  text += R"(,"delta":true,"data":)";
  append_json_string(text, delta);
  text += '}';
  FrameRef d = Frame::make(Opcode::text, text, meta);
  Frame& df = const_cast<Frame&>(*d);
  df.delta_form_ = true;
  df.full_ = full.get();
  f.delta_ = d.detach();  // the full frame owns it
  f.delta_base_ = base->seq();
  return full;
}

}  // namespace fanout::detail

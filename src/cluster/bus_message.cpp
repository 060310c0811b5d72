#include "fanout/bus_message.hpp"

#include <fmt/format.h>

#include <charconv>

namespace fanout {
namespace {

constexpr std::string_view k_magic = "FO1 ";

// Reads a decimal number ending at `stop`; advances `p` past the terminator.
bool number(const char*& p, const char* end, char stop, std::uint64_t& out) noexcept {
  const auto [next, ec] = std::from_chars(p, end, out);
  if (ec != std::errc{} || next == p || next == end || *next != stop) return false;
  p = next + 1;
  return true;
}

}  // namespace

std::string encode_bus_message(const BusMessage& m) {
  std::string s = fmt::format("{}{} {} {} {} {}\n", k_magic, m.seq, m.fence, m.op == Opcode::binary ? 'b' : 't',
                              m.topic.size(), m.key.size());
  s.reserve(s.size() + m.topic.size() + m.key.size() + m.payload.size());
  s.append(m.topic).append(m.key).append(m.payload);
  return s;
}

bool decode_bus_message(std::string_view wire, BusMessage& out) noexcept {
  if (!wire.starts_with(k_magic)) return false;
  const char* p = wire.data() + k_magic.size();
  const char* end = wire.data() + wire.size();
  std::uint64_t topic_len = 0, key_len = 0;
  if (!number(p, end, ' ', out.seq) || !number(p, end, ' ', out.fence)) return false;
  if (end - p < 2 || (p[0] != 't' && p[0] != 'b') || p[1] != ' ') return false;
  out.op = p[0] == 'b' ? Opcode::binary : Opcode::text;
  p += 2;
  if (!number(p, end, ' ', topic_len) || !number(p, end, '\n', key_len)) return false;
  const auto left = static_cast<std::uint64_t>(end - p);
  if (topic_len == 0 || topic_len > left || key_len > left - topic_len) return false;
  out.topic = std::string_view(p, topic_len);
  out.key = std::string_view(p + topic_len, key_len);
  out.payload = std::string_view(p + topic_len + key_len, static_cast<std::size_t>(left - topic_len - key_len));
  return true;
}

}  // namespace fanout

#include "fanout/detail/fossil_delta.hpp"

#include <algorithm>
#include <bit>
#include <memory>
#include <vector>

namespace fanout::detail::fossil {
namespace {

// The format's digits, least to most valuable: a number is written most significant digit first.
constexpr std::string_view k_digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";

constexpr std::int8_t digit_value(unsigned char c) noexcept {
  if (c >= '0' && c <= '9') return static_cast<std::int8_t>(c - '0');
  if (c >= 'A' && c <= 'Z') return static_cast<std::int8_t>(c - 'A' + 10);
  if (c == '_') return 36;
  if (c >= 'a' && c <= 'z') return static_cast<std::int8_t>(c - 'a' + 37);
  if (c == '~') return 63;
  return -1;
}

void put_number(std::string& out, std::uint64_t v) {
  char buf[12];
  int n = 0;
  do {
    buf[n++] = k_digits[v & 63];
    v >>= 6;
  } while (v);
  while (n) out += buf[--n];
}

// Shortest match worth a copy: a copy costs its two numbers and two punctuation bytes.
constexpr std::size_t k_window = 8;

bool continuation(unsigned char c) noexcept { return (c & 0xC0) == 0x80; }

std::uint32_t window_hash(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < k_window; ++i) v = (v << 8) | p[i];
  return static_cast<std::uint32_t>((v * 0x9E3779B97F4A7C15ull) >> 32);
}

}  // namespace

std::uint32_t checksum(std::string_view data) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::uint32_t sum = 0;
  std::size_t i = 0;
  for (; i + 4 <= data.size(); i += 4)
    sum += (std::uint32_t{p[i]} << 24) | (std::uint32_t{p[i + 1]} << 16) | (std::uint32_t{p[i + 2]} << 8) | p[i + 3];
  for (int shift = 24; i < data.size(); ++i, shift -= 8) sum += std::uint32_t{p[i]} << shift;
  return sum;
}

void encode(std::string_view source, std::string_view target, std::string& out) {
  const auto* src = reinterpret_cast<const unsigned char*>(source.data());
  const auto* tgt = reinterpret_cast<const unsigned char*>(target.data());
  put_number(out, target.size());
  out += '\n';

  const auto insert = [&](std::size_t from, std::size_t to) {
    if (from >= to) return;
    put_number(out, to - from);
    out += ':';
    out.append(target.substr(from, to - from));
  };

  std::size_t literal = 0;  // start of the target bytes not covered yet
  if (source.size() >= k_window && target.size() >= k_window) {
    // Where each window of the source starts (the first one keeps a hash slot: the longest run
    // forward from it): one pass, no search tree.
    const std::size_t slots = std::bit_ceil(std::max<std::size_t>(64, 2 * source.size()));
    std::vector<std::uint32_t> table(slots, 0);  // position + 1; 0: empty
    for (std::size_t i = 0; i + k_window <= source.size(); ++i) {
      auto& slot = table[window_hash(src + i) & (slots - 1)];
      if (slot == 0) slot = static_cast<std::uint32_t>(i + 1);
    }

    std::size_t p = 0;
    while (p + k_window <= target.size()) {
      const std::uint32_t slot = table[window_hash(tgt + p) & (slots - 1)];
      if (slot == 0 || !std::equal(tgt + p, tgt + p + k_window, src + slot - 1)) {
        ++p;
        continue;
      }
      std::size_t s = slot - 1, t = p, end_t = p + k_window, end_s = s + k_window;
      while (end_t < target.size() && end_s < source.size() && tgt[end_t] == src[end_s]) ++end_t, ++end_s;
      while (t > literal && s > 0 && tgt[t - 1] == src[s - 1]) --t, --s;
      // Literals must not split a UTF-8 character (see the header): move the copy's ends inward.
      while (t < end_t && continuation(tgt[t])) ++t, ++s;
      while (end_t > t && end_t < target.size() && continuation(tgt[end_t])) --end_t, --end_s;
      if (end_t - t < k_window) {
        ++p;
        continue;
      }
      insert(literal, t);
      put_number(out, end_t - t);
      out += '@';
      put_number(out, s);
      out += ',';
      literal = p = end_t;
    }
  }
  insert(literal, target.size());
  put_number(out, checksum(target));
  out += ';';
}

namespace {

// Reads a number; false when there is none, or it exceeds 2^48 (no real size does).
bool read_number(std::string_view& in, std::uint64_t& v) {
  v = 0;
  std::size_t n = 0;
  for (; n < in.size(); ++n) {
    const int d = digit_value(static_cast<unsigned char>(in[n]));
    if (d < 0) break;
    if (v >> 42) return false;
    v = (v << 6) | static_cast<std::uint64_t>(d);
  }
  in.remove_prefix(n);
  return n > 0;
}

}  // namespace

const char* decode(std::string_view source, std::string_view delta, std::string& out, std::size_t max_target) {
  out.clear();
  std::uint64_t size = 0;
  if (!read_number(delta, size) || delta.empty() || delta.front() != '\n') return "bad header";
  delta.remove_prefix(1);
  if (size > max_target) return "target larger than allowed";
  out.reserve(static_cast<std::size_t>(size));
  for (;;) {
    std::uint64_t n = 0;
    if (!read_number(delta, n) || delta.empty()) return "truncated segment";
    const char op = delta.front();
    delta.remove_prefix(1);
    switch (op) {
      case '@': {
        std::uint64_t offset = 0;
        if (!read_number(delta, offset) || delta.empty() || delta.front() != ',') return "bad copy";
        delta.remove_prefix(1);
        if (offset > source.size() || n > source.size() - offset) return "copy outside the source";
        if (n > size - out.size()) return "copy past the target size";
        out.append(source.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(n)));
        break;
      }
      case ':':
        if (n > delta.size()) return "insert past the end of the delta";
        if (n > size - out.size()) return "insert past the target size";
        out.append(delta.substr(0, static_cast<std::size_t>(n)));
        delta.remove_prefix(static_cast<std::size_t>(n));
        break;
      case ';':
        if (!delta.empty()) return "bytes after the trailer";
        if (out.size() != size) return "target size does not match the header";
        if (checksum(out) != static_cast<std::uint32_t>(n) || (n >> 32) != 0) return "bad checksum";
        return nullptr;
      default: return "unknown segment";
    }
  }
}

}  // namespace fanout::detail::fossil

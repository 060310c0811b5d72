#include "request.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>

namespace fanout::sim::detail {
namespace {

constexpr std::size_t k_max_name = 64;  // channel / instId length

}  // namespace

bool parse_client_request(std::string_view text, ClientRequest& out, std::string& why) {
  // One parser per thread: each simulator serves from a single thread, and its buffers are reused.
  thread_local simdjson::dom::parser parser;
  auto fail = [&why](std::string_view what) {
    why = what;
    return false;
  };
  simdjson::dom::element doc;
  if (auto error = parser.parse(text.data(), text.size()).get(doc)) return fail(simdjson::error_message(error));
  simdjson::dom::object request;
  if (doc.get_object().get(request)) return fail("not an object");
  std::string_view op;
  if (request["op"].get_string().get(op)) return fail("missing op");
  if (op != "subscribe" && op != "unsubscribe") return fail("unknown op");
  simdjson::dom::array args;
  if (request["args"].get_array().get(args) || args.size() == 0) return fail("args must be a non-empty array");

  out.op = op;
  for (simdjson::dom::element arg : args) {
    std::string_view channel, inst;
    if (arg["channel"].get_string().get(channel) || arg["instId"].get_string().get(inst))
      return fail("each arg needs channel and instId strings");
    if (!valid_name(channel) || !valid_name(inst)) return fail("invalid channel or instId");
    out.args.emplace_back(channel, inst);
  }
  if (std::string_view id; !request["id"].get_string().get(id) && valid_name(id)) out.id = id;
  return true;
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > k_max_name) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7F && c != '"' && c != '\\'; });
}

std::string echo_escape(std::string_view in, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < in.size() && i < limit; ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", unsigned(c));
    } else if (c >= 0x80) {
      out += '?';
    } else {
      out += char(c);
    }
  }
  if (in.size() > limit) out += "...";
  return out;
}

}  // namespace fanout::sim::detail

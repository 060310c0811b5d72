#include "fanout/detail/control_protocol.hpp"

#include <simdjson.h>

#include <fmt/format.h>

#include <optional>
#include <utility>

#include "fanout/detail/json.hpp"

namespace fanout::detail {

namespace {
/// True when every number outside strings follows JSON's grammar, so a NUMBER_ERROR from simdjson
/// means a value out of range (past 64 bits, or a double's exponent) rather than malformed text.
bool numbers_well_formed(std::string_view t) noexcept {
  const auto digit = [&](std::size_t i) { return i < t.size() && t[i] >= '0' && t[i] <= '9'; };
  for (std::size_t i = 0; i < t.size();) {
    if (t[i] == '"') {
      for (++i; i < t.size() && t[i] != '"'; ++i)
        if (t[i] == '\\') ++i;
      ++i;
    } else if (t[i] == '-' || digit(i)) {
      if (t[i] == '-') ++i;
      if (!digit(i)) return false;
      if (t[i] == '0' && digit(i + 1)) return false;  // leading zero
      while (digit(i)) ++i;
      if (i < t.size() && t[i] == '.') {
        if (!digit(++i)) return false;
        while (digit(i)) ++i;
      }
      if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        if (++i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
        if (!digit(i)) return false;
        while (digit(i)) ++i;
      }
    } else {
      ++i;
    }
  }
  return true;
}
}  // namespace

bool control_op_of(std::string_view op, ControlRequest::Op& out) noexcept {
  using Op = ControlRequest::Op;
  static constexpr std::pair<std::string_view, Op> k_ops[] = {
      {"subscribe", Op::subscribe}, {"unsubscribe", Op::unsubscribe}, {"ping", Op::ping}, {"auth", Op::auth},
      {"refresh", Op::refresh},     {"presence", Op::presence},       {"rpc", Op::rpc},
  };
  for (const auto& [name, value] : k_ops)
    if (name == op) {
      out = value;
      return true;
    }
  return false;
}

namespace {

constexpr std::size_t k_kept_parser_bytes = 16 * 1024;

/// The text of `key`'s value in the JSON object `text` (already validated), exactly as the client
/// wrote it: an rpc's data reaches the application byte for byte.
std::optional<std::string> raw_member(std::string_view text, std::string_view key) {
  const simdjson::padded_string padded(text);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(obj)) return std::nullopt;
  for (auto field : obj) {
    std::string_view name;
    simdjson::ondemand::value value;
    if (field.unescaped_key().get(name) || field.value().get(value)) return std::nullopt;
    if (name != key) continue;
    simdjson::ondemand::json_type type;
    if (value.type().get(type)) return std::nullopt;
    std::string_view raw;
    bool failed = false;
    if (type == simdjson::ondemand::json_type::object) {
      simdjson::ondemand::object o;
      failed = value.get_object().get(o) || o.raw_json().get(raw);
    } else if (type == simdjson::ondemand::json_type::array) {
      simdjson::ondemand::array a;
      failed = value.get_array().get(a) || a.raw_json().get(raw);
    } else {
      raw = value.raw_json_token();
    }
    if (failed) return std::nullopt;
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r'))
      raw.remove_suffix(1);
    return std::string(raw);
  }
  return std::nullopt;
}

}  // namespace

ControlParse parse_control(std::string_view text) {
  ControlParse out;
  const auto fail = [&out](ControlError error, std::string message) {
    out.error = error;
    out.message = std::move(message);
    return std::move(out);
  };
  // Only an object can be a control op: an application's other messages are not parsed at all.
  if (const auto first = text.find_first_not_of(" \t\r\n"); first == std::string_view::npos || text[first] != '{') {
    out.message = "message is not a JSON object";
    return out;
  }
  // The DOM parser validates the whole message (trailing garbage included). One is kept per thread
  // for the messages most clients send (every client text message comes here first); a larger
  // message gets a parser of its own, so no thread keeps a big one's buffers.
  thread_local simdjson::dom::parser kept;
  simdjson::dom::parser own;
  auto& parser = text.size() <= k_kept_parser_bytes ? kept : own;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (const auto err = parser.parse(text.data(), text.size(), true).get(doc);
      err == simdjson::NUMBER_ERROR && numbers_well_formed(text)) {
    // Well-formed JSON with a number out of range (a `since` of 2^64): the arguments are wrong, not
    // the JSON, and docs/protocol.md promises 4002 for a `since` that is not a seq.
    out.error = ControlError::bad_args;
    out.message = "numbers must fit in 64 bits";
    // A control op only when its "op" names one; the on-demand parser reads "op" without the numbers.
    ControlRequest::Op ignored;
    const auto op = raw_member(text, "op");
    out.control = op && op->size() >= 2 && op->front() == '"' && control_op_of(op->substr(1, op->size() - 2), ignored);
    return out;
  } else if (err || doc.get_object().get(obj)) {
    out.message = "message is not a JSON object";
    return out;
  }
  // "op" decides whether this is a control message at all; anything else is the application's.
  std::string_view op;
  const auto op_field = obj["op"];
  if (op_field.error()) return fail(ControlError::unknown_op, "missing \"op\"");
  if (op_field.get_string().get(op)) return fail(ControlError::bad_args, "\"op\" must be a string");
  if (!control_op_of(op, out.request.op))
    return fail(ControlError::unknown_op, "unknown op (subscribe, unsubscribe, ping, auth, refresh, presence, rpc)");
  out.control = true;
  using Op = ControlRequest::Op;
  std::vector<std::string> args;
  std::optional<std::string_view> arg;  // presence: one topic
  bool have_id = false;
  // Unknown fields are ignored so clients may add their own (e.g. "id" beside a subscribe).
  for (auto [key, value] : obj) {
    if (key == "since") {
      simdjson::dom::object since;
      if (value.get_object().get(since))
        return fail(ControlError::bad_args, R"("since" must be an object of topic: seq or topic: {"seq":N,"epoch":E})");
      for (auto [topic, where] : since) {
        Since s{std::string(topic)};
        simdjson::dom::object detail;
        bool ok = !where.get_uint64().get(s.seq);
        if (!ok && !where.get_object().get(detail)) {
          ok = !detail["seq"].get_uint64().get(s.seq);
          if (auto e = detail["epoch"]; ok && e.error() != simdjson::NO_SUCH_FIELD) ok = !e.get_uint64().get(s.epoch);
        }
        if (!ok)
          return fail(ControlError::bad_args,
                      fmt::format(R"("since" for {} must be a seq (unsigned integer) or {{"seq":N,"epoch":E}})",
                                  json_string(topic)));
        out.request.since.push_back(std::move(s));
      }
    } else if (key == "snapshot") {
      if (value.get_bool().get(out.request.snapshot))
        return fail(ControlError::bad_args, R"("snapshot" must be true or false)");
    } else if (key == "interval_ms") {
      if (value.get_uint64().get(out.request.interval_ms))
        return fail(ControlError::bad_args, R"("interval_ms" must be an unsigned integer (milliseconds))");
    } else if (key == "presence") {
      if (value.get_bool().get(out.request.presence))
        return fail(ControlError::bad_args, R"("presence" must be true or false)");
    } else if (key == "arg") {  // presence: one topic
      std::string_view topic;
      if (value.get_string().get(topic)) return fail(ControlError::bad_args, "\"arg\" must be a topic name");
      arg = topic;
    } else if (key == "token") {
      std::string_view token;
      if (value.get_string().get(token)) return fail(ControlError::bad_args, "\"token\" must be a string");
      out.request.token = token;
    } else if (key == "args") {
      simdjson::dom::array arr;
      if (value.get_array().get(arr)) return fail(ControlError::bad_args, "\"args\" must be an array of topic names");
      for (auto item : arr) {
        std::string_view s;
        if (item.get_string().get(s)) return fail(ControlError::bad_args, "\"args\" must be an array of topic names");
        args.emplace_back(s);
      }
    } else if (out.request.op == Op::rpc && key == "id" && !have_id) {
      if (!value.is_string() && !value.is_number())
        return fail(ControlError::bad_args, R"(rpc: "id" must be a number or a string)");
      auto id = simdjson::minify(value);
      if (id.size() > k_max_rpc_id_bytes)
        return fail(ControlError::bad_args, fmt::format("rpc: \"id\" longer than {} bytes", k_max_rpc_id_bytes));
      out.request.id = std::move(id);
      have_id = true;
    } else if (out.request.op == Op::rpc && key == "method") {
      std::string_view method;
      if (!value.get_string().get(method)) out.request.method = method;
    }
  }
  switch (out.request.op) {
    case Op::subscribe:
    case Op::unsubscribe:
      if (args.empty()) return fail(ControlError::bad_args, fmt::format("\"{}\" needs a non-empty \"args\" array", op));
      break;
    case Op::auth:
    case Op::refresh:
      if (out.request.token.empty())
        return fail(ControlError::bad_args, fmt::format("\"{}\" needs a \"token\" string", op));
      break;
    case Op::rpc:
      if (!have_id) return fail(ControlError::bad_args, R"(rpc needs an "id" (a number or a string))");
      if (obj["data"].error() == simdjson::NO_SUCH_FIELD) {
        out.request.data = "null";
      } else if (auto data = raw_member(text, "data")) {
        out.request.data = std::move(*data);
      } else {
        return fail(ControlError::bad_json, "rpc: unreadable \"data\"");
      }
      break;
    case Op::presence:
      if (arg) args.emplace_back(*arg);
      if (args.size() != 1)
        return fail(ControlError::bad_args, R"("presence" needs one topic: {"op":"presence","arg":"t"})");
      break;
    case Op::ping: break;
  }
  out.request.args = std::move(args);
  out.ok = true;
  return out;
}

}  // namespace fanout::detail

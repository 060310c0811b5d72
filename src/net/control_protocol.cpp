#include "fanout/detail/control_protocol.hpp"

#include <simdjson.h>

#include <optional>

#include <fmt/format.h>

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

ControlParse parse_control(std::string_view text) {
  ControlParse out;
  // The DOM parser validates the whole message (trailing garbage included); control messages are
  // small and rare, so its cost does not matter here.
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (const auto err = parser.parse(text.data(), text.size(), true).get(doc);
      err == simdjson::NUMBER_ERROR && numbers_well_formed(text)) {
    // Well-formed JSON with a number out of range (a `since` of 2^64): the arguments are wrong, not
    // the JSON, and docs/protocol.md promises 4002 for a `since` that is not a seq.
    out.error = ControlError::bad_args;
    out.message = "numbers must fit in 64 bits";
    return out;
  } else if (err || doc.get_object().get(obj)) {
    out.message = "message is not a JSON object";
    return out;
  }
  std::string_view op;
  std::vector<std::string> args;
  std::optional<std::string_view> arg;
  bool have_op = false;
  // Unknown fields are ignored so clients may add their own (e.g. "id").
  for (auto [key, value] : obj) {
    if (key == "op") {
      if (value.get_string().get(op)) {
        out.error = ControlError::bad_args;
        out.message = "\"op\" must be a string";
        return out;
      }
      have_op = true;
    } else if (key == "since") {
      simdjson::dom::object since;
      if (value.get_object().get(since)) {
        out.error = ControlError::bad_args;
        out.message = R"("since" must be an object of topic: seq or topic: {"seq":N,"epoch":E})";
        return out;
      }
      for (auto [topic, where] : since) {
        Since s{std::string(topic)};
        simdjson::dom::object detail;
        bool ok = !where.get_uint64().get(s.seq);
        if (!ok && !where.get_object().get(detail)) {
          ok = !detail["seq"].get_uint64().get(s.seq);
          if (auto e = detail["epoch"]; ok && e.error() != simdjson::NO_SUCH_FIELD) ok = !e.get_uint64().get(s.epoch);
        }
        if (!ok) {
          out.error = ControlError::bad_args;
          out.message = fmt::format(R"("since" for {} must be a seq (unsigned integer) or {{"seq":N,"epoch":E}})",
                                    json_string(topic));
          return out;
        }
        out.request.since.push_back(std::move(s));
      }
    } else if (key == "snapshot") {
      if (value.get_bool().get(out.request.snapshot)) {
        out.error = ControlError::bad_args;
        out.message = R"("snapshot" must be true or false)";
        return out;
      }
    } else if (key == "presence") {
      if (value.get_bool().get(out.request.presence)) {
        out.error = ControlError::bad_args;
        out.message = R"("presence" must be true or false)";
        return out;
      }
    } else if (key == "arg") {  // presence: one topic
      std::string_view topic;
      if (value.get_string().get(topic)) {
        out.error = ControlError::bad_args;
        out.message = "\"arg\" must be a topic name";
        return out;
      }
      arg = topic;
    } else if (key == "token") {
      std::string_view token;
      if (value.get_string().get(token)) {
        out.error = ControlError::bad_args;
        out.message = "\"token\" must be a string";
        return out;
      }
      out.request.token = token;
    } else if (key == "args") {
      simdjson::dom::array arr;
      if (value.get_array().get(arr)) {
        out.error = ControlError::bad_args;
        out.message = "\"args\" must be an array of topic names";
        return out;
      }
      for (auto item : arr) {
        std::string_view s;
        if (item.get_string().get(s)) {
          out.error = ControlError::bad_args;
          out.message = "\"args\" must be an array of topic names";
          return out;
        }
        args.emplace_back(s);
      }
    }
  }
  if (!have_op) {
    out.error = ControlError::unknown_op;
    out.message = "missing \"op\"";
    return out;
  }
  if (op == "subscribe" || op == "unsubscribe") {
    if (args.empty()) {
      out.error = ControlError::bad_args;
      out.message = fmt::format("\"{}\" needs a non-empty \"args\" array", op);
      return out;
    }
    out.request.op = op == "subscribe" ? ControlRequest::Op::subscribe : ControlRequest::Op::unsubscribe;
  } else if (op == "presence") {
    if (arg) args.emplace_back(*arg);
    if (args.size() != 1) {
      out.error = ControlError::bad_args;
      out.message = R"("presence" needs one topic: {"op":"presence","arg":"t"})";
      return out;
    }
    out.request.op = ControlRequest::Op::presence;
  } else if (op == "ping") {
    out.request.op = ControlRequest::Op::ping;
  } else if (op == "auth" || op == "refresh") {
    if (out.request.token.empty()) {
      out.error = ControlError::bad_args;
      out.message = fmt::format("\"{}\" needs a \"token\" string", op);
      return out;
    }
    out.request.op = op == "auth" ? ControlRequest::Op::auth : ControlRequest::Op::refresh;
  } else {
    out.error = ControlError::unknown_op;
    out.message = "unknown op (subscribe, unsubscribe, ping, auth, refresh, presence)";
    return out;
  }
  out.request.args = std::move(args);
  out.ok = true;
  return out;
}

}  // namespace fanout::detail

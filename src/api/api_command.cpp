// Server API commands: their names, and JSON text -> ApiCommand (docs/server-api.md).
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "fanout/api_commands.hpp"

namespace fanout {

namespace {
using Kind = ApiCommand::Kind;
constexpr std::array<std::pair<Kind, const char*>, 12> k_names = {{
    {Kind::publish, "publish"},
    {Kind::broadcast, "broadcast"},
    {Kind::send_to_user, "send_to_user"},
    {Kind::send_to_client, "send_to_client"},
    {Kind::join, "join"},
    {Kind::leave, "leave"},
    {Kind::disconnect, "disconnect"},
    {Kind::bind, "bind"},
    {Kind::unbind, "unbind"},
    {Kind::presence, "presence"},
    {Kind::online, "online"},
    {Kind::info, "info"},
}};
}  // namespace

const char* ApiCommand::name(Kind kind) noexcept {
  for (const auto& [k, n] : k_names)
    if (k == kind) return n;
  return "?";
}

std::optional<ApiCommand::Kind> ApiCommand::kind_by_name(std::string_view name) noexcept {
  for (const auto& [k, n] : k_names)
    if (name == n) return k;
  return std::nullopt;
}

bool ApiCommand::is_action(Kind kind) noexcept {
  return kind != Kind::presence && kind != Kind::online && kind != Kind::info;
}

namespace {
namespace od = simdjson::ondemand;

std::string_view trim_json(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

/// The fields of one command object, read in any order; what each kind needs is checked after.
class FieldReader {
 public:
  explicit FieldReader(ApiCommand& c) : c_(c) {}

  /// False, with error(), on a field of the wrong type.
  bool read(std::string_view key, od::value v) {
    if (key == "cmd") return string(v, key, cmd_) && (have_cmd_ = true);
    if (key == "topic") return string(v, key, c_.topic) && mark(k_topic);
    if (key == "user") return string(v, key, c_.user) && mark(k_user);
    if (key == "client") return string(v, key, c_.client) && mark(k_client);
    if (key == "reason") return string(v, key, c_.reason);
    if (key == "data") return data(v) && mark(k_data);
    if (key == "exclude") return strings(v, key, c_.exclude);
    if (key == "users") return strings(v, key, c_.users) && mark(k_users);
    if (key == "clients") return boolean(v, key, c_.list_clients);
    if (key == "code") return code(v);
    return true;  // unknown fields are the caller's (an "id" of its own, say)
  }

  /// After every field: the fields `kind` needs are there and make sense.
  bool check(Kind kind) {
    c_.kind = kind;
    switch (kind) {
      case Kind::publish: return need(k_topic, "topic") && need(k_data, "data");
      case Kind::broadcast: return need(k_data, "data");
      case Kind::send_to_user: return need(k_user, "user") && need(k_data, "data");
      case Kind::send_to_client: return need(k_client, "client") && need(k_data, "data");
      case Kind::join:
      case Kind::leave: return need(k_client, "client") && need(k_topic, "topic");
      case Kind::disconnect:
        if (!(seen_ & (k_client | k_user))) return fail("missing field \"client\" or \"user\"");
        if (c_.reason.size() > 123) return fail("\"reason\" must be at most 123 bytes (a close frame's room)");
        return ((seen_ & k_client) == 0 || need(k_client, "client")) && ((seen_ & k_user) == 0 || need(k_user, "user"));
      case Kind::bind: return need(k_client, "client") && need(k_user, "user");
      case Kind::unbind: return need(k_client, "client");
      case Kind::presence: return need(k_topic, "topic");
      case Kind::online:
        if (!(seen_ & (k_user | k_users))) return fail("missing field \"user\" or \"users\"");
        return (seen_ & k_user) == 0 || need(k_user, "user");
      case Kind::info: return true;
    }
    return true;
  }

  bool have_cmd() const noexcept { return have_cmd_; }
  const std::string& cmd() const noexcept { return cmd_; }
  std::string& error() noexcept { return error_; }

 private:
  enum : unsigned { k_topic = 1, k_user = 2, k_client = 4, k_data = 8, k_users = 16 };

  bool mark(unsigned f) {
    seen_ |= f;
    return true;
  }
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }
  /// Present and not empty (data may be empty: an empty message is a message).
  bool need(unsigned f, std::string_view name) {
    if (!(seen_ & f)) return fail(fmt::format("missing field \"{}\"", name));
    const std::string* s = f == k_topic ? &c_.topic : f == k_user ? &c_.user : f == k_client ? &c_.client : nullptr;
    if (s && s->empty()) return fail(fmt::format("\"{}\" must not be empty", name));
    return true;
  }
  bool string(od::value v, std::string_view key, std::string& out) {
    std::string_view s;
    if (v.get_string().get(s)) return fail(fmt::format("\"{}\" must be a string", key));
    out.assign(s);
    return true;
  }
  bool boolean(od::value v, std::string_view key, bool& out) {
    if (v.get_bool().get(out)) return fail(fmt::format("\"{}\" must be true or false", key));
    return true;
  }
  bool strings(od::value v, std::string_view key, std::vector<std::string>& out) {
    od::array a;
    if (v.get_array().get(a)) return fail(fmt::format("\"{}\" must be an array of strings", key));
    for (auto element : a) {
      std::string_view s;
      if (element.get_string().get(s)) return fail(fmt::format("\"{}\" must be an array of strings", key));
      out.emplace_back(s);
    }
    return true;
  }
  bool code(od::value v) {
    std::uint64_t n = 0;
    if (v.get_uint64().get(n) || !(n == 1000 || (n >= 3000 && n <= 4999)))
      return fail("\"code\" must be 1000 or 3000-4999 (RFC 6455 7.4)");
    c_.code = static_cast<std::uint16_t>(n);
    return true;
  }
  /// A string: its content. Anything else: its JSON text as it stands in the command.
  bool data(od::value v) {
    od::json_type type;
    if (v.type().get(type)) return fail("\"data\" is not a JSON value");
    std::string_view text;
    simdjson::error_code err = simdjson::SUCCESS;
    switch (type) {
      case od::json_type::string: err = v.get_string().get(text); break;
      case od::json_type::object: {
        od::object o;
        err = v.get_object().get(o);
        if (!err) err = o.raw_json().get(text);
        break;
      }
      case od::json_type::array: {
        od::array a;
        err = v.get_array().get(a);
        if (!err) err = a.raw_json().get(text);
        break;
      }
      default: text = trim_json(v.raw_json_token()); break;
    }
    if (err) return fail("\"data\" is not a JSON value");
    c_.data.assign(type == od::json_type::string ? text : trim_json(text));
    return true;
  }

  ApiCommand& c_;
  std::string cmd_;
  std::string error_;
  unsigned seen_ = 0;
  bool have_cmd_ = false;
};

/// The text of a request, validated and padded for the on-demand parser. One per thread, reused:
/// it grows to the largest body seen (bounded by the listener's max_request_body_bytes).
class JsonDocument {
 public:
  bool load(std::string_view text, std::string& error) {
    // The DOM parser validates the whole text (what the on-demand one skips is never checked); the
    // on-demand pass then reads the fields and gives `data` its exact text.
    if (const auto err = dom_.parse(text.data(), text.size(), true).error()) {
      error = err == simdjson::NUMBER_ERROR
                  ? "malformed JSON: a number out of range (integers must fit in 64 bits; send such data as a string)"
                  : fmt::format("malformed JSON: {}", simdjson::error_message(err));
      return false;
    }
    padded_.resize(text.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(padded_.data(), text.data(), text.size());
    size_ = text.size();
    return true;
  }
  /// The root object, or false with `error`.
  bool root(od::object& object, std::string& error) {
    if (parser_.iterate(simdjson::padded_string_view(padded_.data(), size_, padded_.size())).get(doc_) ||
        doc_.get_object().get(object)) {
      error = "the body must be a JSON object";
      return false;
    }
    return true;
  }

 private:
  simdjson::dom::parser dom_;
  od::parser parser_;
  od::document doc_;
  std::string padded_;
  std::size_t size_ = 0;
};

JsonDocument& document() {
  thread_local JsonDocument doc;
  return doc;
}

/// `batch`: where a top-level {"cmd":"batch"} is reported (else it is an error, as inside a batch).
bool read_command(od::object object, std::optional<Kind> kind, ApiCommand& out, std::string& error,
                  bool* batch = nullptr) {
  FieldReader reader(out);
  for (auto field : object) {
    std::string_view key;
    od::value value;
    if (field.unescaped_key().get(key) || field.value().get(value)) {
      error = "malformed JSON object";
      return false;
    }
    // The key's storage is reused by the next string read: keep a copy while reading the value.
    const std::string name(key);
    if (!reader.read(name, value)) {
      error = std::move(reader.error());
      return false;
    }
  }
  if (!kind) {
    if (!reader.have_cmd()) {
      error = "missing field \"cmd\"";
      return false;
    }
    kind = ApiCommand::kind_by_name(reader.cmd());
    if (!kind && reader.cmd() == "batch") {
      if (batch) *batch = true;
      error = batch ? "a batch: see parse_api_batch" : "a batch holds commands, not batches";
      return false;
    }
    if (!kind) {
      error = fmt::format("unknown cmd \"{}\"", reader.cmd());
      return false;
    }
  }
  if (!reader.check(*kind)) {
    error = std::move(reader.error());
    return false;
  }
  return true;
}

ApiParse parse(std::optional<Kind> kind, std::string_view json) {
  ApiParse out;
  auto& doc = document();
  od::object object;
  if (!doc.load(json, out.error) || !doc.root(object, out.error)) return out;
  ApiCommand c;
  if (read_command(object, kind, c, out.error, kind ? nullptr : &out.batch)) out.command = std::move(c);
  return out;
}
}  // namespace

ApiParse parse_api_command(std::string_view json) { return parse(std::nullopt, json); }
ApiParse parse_api_command(ApiCommand::Kind kind, std::string_view json) { return parse(kind, json); }

ApiBatchParse parse_api_batch(std::string_view json, std::size_t max_commands) {
  ApiBatchParse out;
  auto& doc = document();
  od::object object;
  if (!doc.load(json, out.error) || !doc.root(object, out.error)) {
    out.status = 400;
    return out;
  }
  od::array commands;
  bool found = false;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key) || key != "commands") continue;
    found = true;
    if (field.value().get_array().get(commands)) {
      out.status = 400;
      out.error = "\"commands\" must be an array of command objects";
      return out;
    }
    break;
  }
  if (!found) {
    out.status = 400;
    out.error = "missing field \"commands\"";
    return out;
  }
  for (auto element : commands) {
    if (out.commands.size() == max_commands) {
      out.commands.clear();
      out.status = 413;
      out.error = fmt::format("a batch holds at most {} commands", max_commands);
      return out;
    }
    auto& one = out.commands.emplace_back();
    od::object o;
    ApiCommand c;
    if (element.get_object().get(o)) {
      one.error = "a command must be a JSON object";
    } else if (read_command(o, std::nullopt, c, one.error)) {
      one.command = std::move(c);
    }
  }
  return out;
}

}  // namespace fanout

#include "fanout/router.hpp"

#include <simdjson.h>

#include <fmt/format.h>

#include <cassert>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace fanout {
namespace {

// One step of a field path. A segment of digits indexes an array, but is still a key when the value
// at that point is an object, so {"0": ...} stays reachable.
struct Segment {
  std::string key;
  std::optional<std::size_t> index;
};
using Path = std::vector<Segment>;

// `what` names the setting in error messages ("topic_template", "key_path", ...).
Path parse_path(std::string_view text, std::string_view what) {
  if (text.empty()) throw std::invalid_argument(fmt::format("fanout::Router: {} has an empty field path", what));
  if (text.find_first_of("{}") != std::string_view::npos)
    throw std::invalid_argument(
        fmt::format("fanout::Router: {} \"{}\" is a plain path such as data.0.instId, without braces", what, text));
  Path path;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t dot = text.find('.', begin);
    const std::string_view seg =
        text.substr(begin, dot == std::string_view::npos ? std::string_view::npos : dot - begin);
    if (seg.empty())
      throw std::invalid_argument(fmt::format("fanout::Router: {} path \"{}\" has an empty segment", what, text));
    Segment s{std::string(seg), std::nullopt};
    std::size_t index = 0;
    const auto [end, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), index);
    if (ec == std::errc{} && end == seg.data() + seg.size()) s.index = index;
    path.push_back(std::move(s));
    if (dot == std::string_view::npos) break;
    begin = dot + 1;
  }
  return path;
}

// A lookup that finds nothing, or finds null, leaves `out` untouched and returns false.
bool lookup(simdjson::dom::element doc, const Path& path, simdjson::dom::element& out) {
  simdjson::dom::element cur = doc;
  for (const Segment& seg : path) {
    simdjson::dom::element next;
    if (seg.index && cur.is_array()) {
      if (cur.get_array().value_unsafe().at(*seg.index).get(next)) return false;
    } else if (cur.is_object()) {
      if (cur.get_object().value_unsafe().at_key(seg.key).get(next)) return false;
    } else {
      return false;
    }
    cur = next;
  }
  if (cur.is_null()) return false;
  out = cur;
  return true;
}

// Appends a scalar as topic or key text: strings unquoted, integers exactly, doubles in their
// shortest round-trip form (the DOM keeps the value, not the spelling: 1.50 becomes 1.5). Objects
// and arrays are not scalars: false.
bool append_scalar(simdjson::dom::element v, std::string& out) {
  char buf[32];
  std::to_chars_result r{};
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: out += v.get_string().value_unsafe(); return true;
    case simdjson::dom::element_type::INT64:
      r = std::to_chars(buf, buf + sizeof buf, v.get_int64().value_unsafe());
      break;
    case simdjson::dom::element_type::UINT64:
      r = std::to_chars(buf, buf + sizeof buf, v.get_uint64().value_unsafe());
      break;
    case simdjson::dom::element_type::DOUBLE:
      r = std::to_chars(buf, buf + sizeof buf, v.get_double().value_unsafe());
      break;
    case simdjson::dom::element_type::BOOL: out += v.get_bool().value_unsafe() ? "true" : "false"; return true;
    default: return false;
  }
  out.append(buf, r.ptr);
  return true;
}

// A sequence number is a non-negative integer, written as a JSON number or as a string of digits
// (some exchanges quote theirs). Anything else is no seq.
std::optional<std::uint64_t> as_seq(simdjson::dom::element v) {
  switch (v.type()) {
    case simdjson::dom::element_type::UINT64: return v.get_uint64().value_unsafe();
    case simdjson::dom::element_type::INT64: {
      const std::int64_t i = v.get_int64().value_unsafe();
      if (i >= 0) return static_cast<std::uint64_t>(i);
      return std::nullopt;
    }
    case simdjson::dom::element_type::DOUBLE: {
      // 42.0 or 4.2e1; only where a double holds the integer exactly.
      const double d = v.get_double().value_unsafe();
      if (d >= 0 && d <= 9007199254740992.0 && std::floor(d) == d) return static_cast<std::uint64_t>(d);
      return std::nullopt;
    }
    case simdjson::dom::element_type::STRING: {
      const std::string_view s = v.get_string().value_unsafe();
      if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;  // no sign, no spaces
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec == std::errc{} && end == s.data() + s.size()) return n;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

// route() runs on one thread, counters() on any: a relaxed load and store is enough for a single
// writer, and cheaper than a locked read-modify-write.
void bump(std::atomic<std::uint64_t>& c) noexcept {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace

struct Router::Impl {
  Options options;
  Callback callback;  // when set, it replaces the whole built-in rule (heartbeats and control too)

  // The template "a{x}b{y}c" is literals {"a","b","c"} around fields {x, y}: literals.size() == fields.size() + 1.
  std::vector<std::string> literals;
  std::vector<Path> fields;
  std::optional<Path> key_path;
  std::optional<Path> seq_path;

  simdjson::dom::parser parser;  // reused: its buffers grow to the largest message and stay

  std::atomic<std::uint64_t> routed{0}, control{0}, heartbeat{0}, unmatched{0}, invalid{0}, non_json{0};

  explicit Impl(Options o) : options(std::move(o)) {
    parse_template(options.topic_template);
    if (!options.key_path.empty()) key_path = parse_path(options.key_path, "key_path");
    if (!options.seq_path.empty()) seq_path = parse_path(options.seq_path, "seq_path");
  }
  explicit Impl(Callback cb) : callback(std::move(cb)) {
    if (!callback) throw std::invalid_argument("fanout::Router: the callback is empty");
  }

  void parse_template(std::string_view t) {
    if (t.empty()) throw std::invalid_argument("fanout::Router: topic_template is empty");
    std::string literal;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '}')
        throw std::invalid_argument(
            fmt::format("fanout::Router: topic_template \"{}\" has an unmatched '}}' at offset {}", t, i));
      if (t[i] != '{') {
        literal += t[i];
        continue;
      }
      const std::size_t close = t.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || t[close] == '{')
        throw std::invalid_argument(
            fmt::format("fanout::Router: topic_template \"{}\" has an unclosed '{{' at offset {}", t, i));
      const std::string_view path = t.substr(i + 1, close - i - 1);
      if (path.empty())
        throw std::invalid_argument(
            fmt::format("fanout::Router: topic_template \"{}\" has an empty field {{}} at offset {}", t, i));
      fields.push_back(parse_path(path, "topic_template"));
      literals.push_back(std::exchange(literal, {}));
      i = close;
    }
    literals.push_back(std::move(literal));
  }

  Result route(std::string_view message, Routed& out) {
    if (callback) {
      std::optional<Routed> r = callback(message);
      if (!r) return count(unmatched, Result::unmatched);
      out = std::move(*r);
      return count(routed, Result::routed);
    }

    for (const std::string& h : options.heartbeat_texts)
      if (message == h) return count(heartbeat, Result::heartbeat);

    simdjson::dom::element doc;
    if (parser.parse(message.data(), message.size(), true).get(doc)) {
      bump(non_json);
      if (options.on_non_json) options.on_non_json(message);
      const std::string& topic = options.non_json_topic.empty() ? options.default_topic : options.non_json_topic;
      if (topic.empty()) return count(invalid, Result::invalid);
      out.topic = topic;
      out.key.reset();
      out.seq.reset();
      return count(routed, Result::routed);
    }

    if (doc.is_object()) {
      const simdjson::dom::object obj = doc.get_object().value_unsafe();
      for (const std::string& f : options.control_fields) {
        simdjson::dom::element ignored;
        if (!obj.at_key(f).get(ignored)) return count(control, Result::control);
      }
    }

    // An empty topic (a template of fields that are all "") is no topic: the hub would refuse it.
    if (!build_topic(doc, out.topic) || out.topic.empty()) {
      if (options.default_topic.empty()) return count(unmatched, Result::unmatched);
      out.topic = options.default_topic;
    }

    simdjson::dom::element v;
    if (key_path && lookup(doc, *key_path, v)) {
      if (!out.key) out.key.emplace();
      out.key->clear();
      if (!append_scalar(v, *out.key)) out.key.reset();
    } else {
      out.key.reset();
    }
    if (seq_path && lookup(doc, *seq_path, v))
      out.seq = as_seq(v);
    else
      out.seq.reset();

    return count(routed, Result::routed);
  }

  // Built in place so the string's capacity is reused from one message to the next.
  bool build_topic(simdjson::dom::element doc, std::string& topic) const {
    topic.clear();
    for (std::size_t i = 0; i < fields.size(); ++i) {
      topic += literals[i];
      simdjson::dom::element v;
      if (!lookup(doc, fields[i], v) || !append_scalar(v, topic)) return false;
    }
    topic += literals.back();
    return true;
  }

  static Result count(std::atomic<std::uint64_t>& c, Result r) noexcept {
    bump(c);
    return r;
  }
};

Router::Router() : Router(Options{}) {}
Router::Router(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Router::Router(Callback callback) : impl_(std::make_unique<Impl>(std::move(callback))) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

Router::Result Router::route(std::string_view message, Routed& out) {
  assert(impl_ && "fanout::Router used after move");
  return impl_->route(message, out);
}

Router::Counters Router::counters() const noexcept {
  if (!impl_) return {};
  constexpr auto relaxed = std::memory_order_relaxed;
  return {impl_->routed.load(relaxed),    impl_->control.load(relaxed), impl_->heartbeat.load(relaxed),
          impl_->unmatched.load(relaxed), impl_->invalid.load(relaxed), impl_->non_json.load(relaxed)};
}

}  // namespace fanout

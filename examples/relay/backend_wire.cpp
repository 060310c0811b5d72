#include "backend_wire.hpp"

#include "fanout/detail/json.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <iterator>

namespace relay::wire {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

using fanout::detail::append_json_string;  // the library's JSON string writer

void append_base64(std::string& out, std::string_view in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
}

// "client":..,"user":.. — the start every body has.
std::string head(std::string_view client, std::string_view user) {
  std::string out = "{\"client\":";
  append_json_string(out, client);
  out += ",\"user\":";
  append_json_string(out, user);
  return out;
}

// The answer's text may hold nothing the client should not see raw: control characters go.
std::string printable(std::string_view s, std::size_t max) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) out += (c < 0x20 || c == 0x7F) ? ' ' : static_cast<char>(c);
  return out;
}

}  // namespace

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string connect_body(const fanout::ConnectRequest& req, std::string_view client,
                         const std::vector<std::string>& forward) {
  std::string out = "{\"client\":";
  append_json_string(out, client);
  out += ",\"remote\":";
  append_json_string(out, req.remote_address);
  out += ",\"path\":";
  append_json_string(out, req.path);
  out += ",\"query\":";
  append_json_string(out, req.query);
  // A token the relay verified ([auth]) already says who this is.
  if (req.identity) {
    out += ",\"user\":";
    append_json_string(out, req.identity->user);
  }
  // Selected headers, under the configured spelling; repeated ones joined as HTTP allows.
  out += ",\"headers\":{";
  bool first = true, cookies = false;
  for (const auto& name : forward) {
    std::string value;
    bool found = false;
    const bool is_cookie = iequal(name, "Cookie");
    for (const auto& [n, v] : req.headers) {
      if (!iequal(n, name)) continue;
      if (found) value += is_cookie ? "; " : ", ";
      value += v;
      found = true;
    }
    if (!found) continue;
    cookies = cookies || is_cookie;
    if (!first) out += ',';
    first = false;
    append_json_string(out, name);
    out += ':';
    append_json_string(out, value);
  }
  out += '}';
  // The Cookie header parsed (only when it is forwarded): {"name":"value"}, the first of a name wins.
  if (cookies) {
    out += ",\"cookies\":{";
    std::vector<std::string_view> seen;
    first = true;
    for (const auto& [n, v] : req.headers) {
      if (!iequal(n, "Cookie")) continue;
      std::string_view rest = v;
      while (!rest.empty()) {
        const auto semi = rest.find(';');
        const auto pair = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        const auto name = trim(pair.substr(0, eq));
        auto value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
        seen.push_back(name);
        if (!first) out += ',';
        first = false;
        append_json_string(out, name);
        out += ':';
        append_json_string(out, value);
      }
    }
    out += '}';
  }
  out += '}';
  return out;
}

std::string message_body(std::string_view client, std::string_view user, std::string_view payload, bool binary) {
  std::string out = head(client, user);
  if (binary) {
    out += ",\"binary\":true,\"data\":\"";
    append_base64(out, payload);
    out += '"';
  } else {
    out += ",\"data\":";
    append_json_string(out, payload);
  }
  out += '}';
  return out;
}

std::string rpc_body(std::string_view client, std::string_view user, std::string_view id, std::string_view method,
                     std::string_view data) {
  std::string out = head(client, user);
  out += ",\"id\":";
  out += id.empty() ? std::string_view("null") : id;
  out += ",\"method\":";
  append_json_string(out, method);
  out += ",\"data\":";
  out += data.empty() ? std::string_view("null") : data;
  out += '}';
  return out;
}

std::string disconnect_body(std::string_view client, std::string_view user) { return head(client, user) + "}"; }

std::optional<fanout::ConnectDecision> parse_connect_answer(std::string_view body, const AnswerLimits& limits,
                                                            std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(body.data(), body.size()).get(obj)) {
    error = "not a JSON object";
    return std::nullopt;
  }
  bool accept = false;
  if (obj["accept"].get(accept)) {
    error = "no boolean \"accept\"";
    return std::nullopt;
  }
  if (!accept) {
    std::int64_t status = 403;
    if (auto s = obj["status"];
        s.error() != simdjson::NO_SUCH_FIELD && (s.get(status) || status < 400 || status > 599)) {
      error = "\"status\" must be an HTTP status 400..599";
      return std::nullopt;
    }
    std::string_view reason = "refused by the backend";
    if (auto r = obj["reason"]; r.error() != simdjson::NO_SUCH_FIELD && r.get(reason)) {
      error = "\"reason\" must be a string";
      return std::nullopt;
    }
    return fanout::ConnectDecision::refused(static_cast<int>(status), printable(reason, limits.max_reason_bytes));
  }
  std::string_view user;
  if (auto u = obj["user"]; u.error() != simdjson::NO_SUCH_FIELD && !u.is_null()) {
    if (u.get(user)) {
      error = "\"user\" must be a string";
      return std::nullopt;
    }
    if (user.size() > limits.max_user_bytes) {
      error = fmt::format("\"user\" is longer than {} bytes", limits.max_user_bytes);
      return std::nullopt;
    }
  }
  std::vector<std::string> topics;
  if (auto t = obj["topics"]; t.error() != simdjson::NO_SUCH_FIELD && !t.is_null()) {
    simdjson::dom::array arr;
    if (t.get(arr)) {
      error = "\"topics\" must be a list of strings";
      return std::nullopt;
    }
    if (arr.size() > limits.max_topics) {
      error = fmt::format("more than {} topics", limits.max_topics);
      return std::nullopt;
    }
    for (auto e : arr) {
      std::string_view topic;
      if (e.get(topic)) {
        error = "\"topics\" must be a list of strings";
        return std::nullopt;
      }
      topics.emplace_back(topic);
    }
  }
  return fanout::ConnectDecision::accepted(std::string(user), std::move(topics));
}

std::optional<RpcAnswer> parse_rpc_answer(std::string_view body, std::string& error) {
  // The DOM parse validates the whole answer; the on-demand pass then reads "data" as the backend
  // wrote it, so the client gets its bytes unchanged.
  simdjson::dom::parser dom;
  simdjson::dom::object obj;
  if (dom.parse(body.data(), body.size()).get(obj)) {
    error = "not a JSON object";
    return std::nullopt;
  }
  RpcAnswer a;
  if (simdjson::dom::object e; obj["error"].get(e) == simdjson::SUCCESS) {
    std::int64_t code = 0;
    std::string_view msg;
    if (e["code"].get(code) || e["msg"].get(msg)) {
      error = "\"error\" must be {\"code\":N,\"msg\":\"..\"}";
      return std::nullopt;
    }
    a.code = code >= 4000 && code <= 4999 ? static_cast<int>(code) : 4500;
    a.msg = printable(msg, 256);
    return a;
  }
  if (obj["data"].error() == simdjson::NO_SUCH_FIELD) {
    error = "neither \"data\" nor \"error\"";
    return std::nullopt;
  }
  simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(body);
  auto doc = parser.iterate(padded);
  simdjson::ondemand::value v;
  if (doc["data"].get(v)) {
    error = "unreadable \"data\"";
    return std::nullopt;
  }
  std::string_view raw;
  simdjson::ondemand::json_type type;
  if (v.type().get(type)) {
    error = "unreadable \"data\"";
    return std::nullopt;
  }
  bool bad = false;
  if (type == simdjson::ondemand::json_type::object) {
    simdjson::ondemand::object o;
    bad = v.get_object().get(o) || o.raw_json().get(raw);
  } else if (type == simdjson::ondemand::json_type::array) {
    simdjson::ondemand::array arr;
    bad = v.get_array().get(arr) || arr.raw_json().get(raw);
  } else {
    raw = v.raw_json_token();
  }
  if (bad) {
    error = "unreadable \"data\"";
    return std::nullopt;
  }
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  a.ok = true;
  a.data = std::string(raw);
  return a;
}

}  // namespace relay::wire

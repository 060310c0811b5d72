#include "fanout/topic_routes.hpp"

#include <charconv>

#include <fmt/format.h>

#include "fanout/detail/json.hpp"
#include "fanout/hub.hpp"

namespace fanout {

namespace {

HttpResponse json(int status, std::string body, std::string headers = {}) {
  return {.status = status, .content_type = "application/json", .body = std::move(body), .headers = std::move(headers)};
}

HttpResponse error(int status, std::string_view msg) {
  return json(status, fmt::format(R"({{"error":{}}})", detail::json_string(msg)) + "\n");
}

std::string cache_control(const TopicRoutesOptions& o) {
  return fmt::format("Cache-Control: public, max-age={}\r\n", o.max_age.count());
}

/// A query parameter as an unsigned number: nullopt when absent, error text when malformed.
bool number_param(const HttpRequest& req, std::string_view name, std::optional<std::uint64_t>& out,
                  std::string& error) {
  const auto text = detail::query_param(req.query(), name);
  if (!text) return true;
  std::uint64_t v = 0;
  const auto* end = text->data() + text->size();
  auto [p, ec] = std::from_chars(text->data(), end, v);
  if (text->empty() || ec != std::errc{} || p != end) {
    error = fmt::format("{} must be an unsigned integer, got {}", name, detail::json_string(*text));
    return false;
  }
  out = v;
  return true;
}

void append_messages(std::string& out, const std::vector<Hub::Message>& messages) {
  out += R"("messages":[)";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    out += fmt::format(R"({}{{"seq":{})", i ? "," : "", m.seq);
    if (!m.key.empty()) out += fmt::format(R"(,"key":{})", detail::json_string(m.key));
    out += R"(,"data":)";
    detail::append_json_value(out, m.payload);
    out += '}';
  }
  out += "]}\n";
}

HttpResponse list_topics(Hub& hub, const TopicRoutesOptions& o) {
  std::string out = R"({"topics":[)";
  bool first = true;
  for (const auto& t : hub.topics()) {
    out += fmt::format(
        R"({}{{"name":{},"members":{},"seq":{},"epoch":{},"rate":{:.1f},"history":{{"messages":{},"bytes":{}}}}})",
        first ? "" : ",", detail::json_string(t.name), t.members, t.seq, t.epoch, t.rate, t.history_messages,
        t.history_bytes);
    first = false;
  }
  out += "]}\n";
  return json(200, std::move(out), cache_control(o));
}

HttpResponse snapshot(Hub& hub, const TopicRoutesOptions& o, const std::string& topic, const HttpRequest& req) {
  const auto m = hub.snapshot(topic);
  if (!m) return error(404, fmt::format("unknown topic {}", topic));
  const auto etag = fmt::format("\"{}-{}\"", m->epoch, m->seq);
  const auto headers = fmt::format("ETag: {}\r\n{}", etag, cache_control(o));
  if (auto inm = req.header("If-None-Match"); inm && (*inm == etag || *inm == "*"))
    return {.status = 304, .content_type = "application/json", .body = {}, .headers = headers};
  std::string out = fmt::format(R"({{"topic":{},"seq":{},"epoch":{},)", detail::json_string(topic), m->seq, m->epoch);
  append_messages(out, m->messages);
  return json(200, std::move(out), headers);
}

HttpResponse history(Hub& hub, const TopicRoutesOptions& o, const std::string& topic, const HttpRequest& req) {
  std::optional<std::uint64_t> since, limit;
  std::string bad;
  if (!number_param(req, "since", since, bad) || !number_param(req, "limit", limit, bad)) return error(400, bad);
  if (limit && (*limit == 0 || *limit > o.max_limit))
    return error(400, fmt::format("limit must be between 1 and {}", o.max_limit));
  const auto m = hub.history(topic, since.value_or(0), limit.value_or(o.default_limit));
  if (!m) return error(404, fmt::format("unknown topic {}", topic));
  std::string out =
      fmt::format(R"({{"topic":{},"seq":{},"epoch":{},"first":{},"truncated":{},)", detail::json_string(topic), m->seq,
                  m->epoch, m->first, m->truncated ? "true" : "false");
  append_messages(out, m->messages);
  return json(200, std::move(out), cache_control(o));
}

}  // namespace

std::vector<HttpRoute> topic_routes(Hub& hub, TopicRoutesOptions o) {
  std::vector<HttpRoute> routes;
  routes.push_back({"/topics", false, [&hub, o](const HttpRequest&) { return list_topics(hub, o); }});
  routes.push_back({"/topics/", true, [&hub, o](const HttpRequest& req) {
                      // /topics/{t}/snapshot or /topics/{t}/history; {t} is percent-encoded and may hold '/'.
                      std::string_view rest = req.path().substr(8);
                      const auto slash = rest.rfind('/');
                      if (slash == std::string_view::npos || slash == 0)
                        return error(404, "expected /topics/{topic}/snapshot or /topics/{topic}/history");
                      const auto what = rest.substr(slash + 1);
                      const auto topic = detail::url_decode(rest.substr(0, slash));
                      if (!topic) return error(400, "malformed percent-encoding in the topic name");
                      if (what == "snapshot") return snapshot(hub, o, *topic, req);
                      if (what == "history") return history(hub, o, *topic, req);
                      return error(404, "expected /topics/{topic}/snapshot or /topics/{topic}/history");
                    }});
  return routes;
}

}  // namespace fanout

#include "fanout/topic_routes.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <memory>
#include <mutex>

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

/// The access rules for an HTTP pull (auth.hpp): nullopt when allowed, else the 401/403 to answer.
/// The request's token serves as the identity, or, when it names a topic (a subscribe token), only
/// for that topic under a `token` rule.
std::optional<HttpResponse> refuse_pull(const Auth& auth, const HttpRequest& req, std::string_view topic) {
  if (!auth.checks_access()) return std::nullopt;
  std::optional<std::string> token;
  if (auto h = req.header("Authorization")) {
    if (h->size() < 7 || !std::equal(h->begin(), h->begin() + 7, "bearer ", [](char a, char b) {
          return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
        }))
      return error(401, "unsupported Authorization scheme (Bearer expected)");
    token = std::string(h->substr(7));
  } else if (auth.query_token) {
    token = detail::query_param(req.query(), "token");
  }
  std::optional<Identity> id;
  if (token && !token->empty()) {
    if (!auth.verifier) return error(401, "this server does not take tokens");
    auto r = auth.verifier->verify(*token);
    if (!r) {
      auto res = error(401, fmt::format("invalid token: {}", to_string(r.error)));
      res.headers = fmt::format("WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
      return res;
    }
    id = std::move(r.identity);
  }
  const Identity* as_identity = id && (!id->topic || auth.rules.access_for(topic) == Access::token) ? &*id : nullptr;
  switch (auth.rules.check(topic, as_identity, id ? &*id : nullptr)) {
    case AccessRules::Verdict::allow: return std::nullopt;
    case AccessRules::Verdict::need_identity: {
      auto res = error(401, fmt::format("{} needs a token", topic));
      res.headers = "WWW-Authenticate: Bearer\r\n";
      return res;
    }
    case AccessRules::Verdict::need_token: return error(403, fmt::format("{} needs a subscribe token", topic));
    case AccessRules::Verdict::deny: break;
  }
  return error(403, fmt::format("not allowed to read {}", topic));
}

}  // namespace

std::vector<HttpRoute> topic_routes(Hub& hub, TopicRoutesOptions o) {
  std::vector<HttpRoute> routes;
  routes.push_back({"/topics/", true, [&hub, o](const HttpRequest& req) {
                      // /topics/{t}/snapshot or /topics/{t}/history; {t} is percent-encoded and may hold '/'.
                      std::string_view rest = req.path().substr(8);
                      const auto slash = rest.rfind('/');
                      if (slash == std::string_view::npos || slash == 0)
                        return error(404, "expected /topics/{topic}/snapshot or /topics/{topic}/history");
                      const auto what = rest.substr(slash + 1);
                      const auto topic = detail::url_decode(rest.substr(0, slash));
                      if (!topic) return error(400, "malformed percent-encoding in the topic name");
                      if (o.auth)
                        if (auto refused = refuse_pull(*o.auth, req, *topic)) return *refused;
                      if (what != "snapshot" && what != "history")
                        return error(404, "expected /topics/{topic}/snapshot or /topics/{topic}/history");
                      auto res = what == "snapshot" ? snapshot(hub, o, *topic, req) : history(hub, o, *topic, req);
                      // A topic that is not public must not sit in a shared cache (CDN, proxy) for others.
                      if (o.auth && o.auth->checks_access() && o.auth->rules.access_for(*topic) != Access::public_)
                        if (auto at = res.headers.find("Cache-Control: public"); at != std::string::npos)
                          res.headers.replace(at, 21, "Cache-Control: private");
                      return res;
                    }});
  return routes;
}

namespace {

/// The topic list as of one moment, sorted by name, shared by every request until it is retaken.
struct TopicListSnapshot {
  std::vector<Hub::TopicInfo> topics;
  std::chrono::steady_clock::time_point taken;
  std::int64_t taken_ms = 0;  // wall clock, for as_of_ms
};

class TopicListCache {
 public:
  TopicListCache(Hub& hub, std::chrono::milliseconds refresh) : hub_(hub), refresh_(refresh) {}

  std::shared_ptr<const TopicListSnapshot> get() {
    const auto now = std::chrono::steady_clock::now();
    if (auto cur = current(); cur && now - cur->taken < refresh_) return cur;
    // One request retakes it; the others meanwhile get the previous snapshot, or wait for the first.
    std::unique_lock retake(retake_, std::try_to_lock);
    if (!retake.owns_lock()) {
      if (auto cur = current()) return cur;
      retake.lock();
    }
    if (auto cur = current(); cur && std::chrono::steady_clock::now() - cur->taken < refresh_) return cur;
    auto fresh = std::make_shared<TopicListSnapshot>();
    fresh->topics = hub_.topics();
    fresh->taken = std::chrono::steady_clock::now();
    fresh->taken_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::lock_guard lock(mutex_);
    snapshot_ = fresh;
    return fresh;
  }

 private:
  std::shared_ptr<const TopicListSnapshot> current() {
    std::lock_guard lock(mutex_);
    return snapshot_;
  }

  Hub& hub_;
  std::chrono::milliseconds refresh_;
  std::mutex mutex_;   // guards snapshot_ (held for a pointer copy)
  std::mutex retake_;  // held by the one request that walks the hub
  std::shared_ptr<const TopicListSnapshot> snapshot_;
};

HttpResponse list_topics(TopicListCache& cache, const TopicListOptions& o, const HttpRequest& req) {
  std::optional<std::uint64_t> limit;
  std::string bad;
  if (!number_param(req, "limit", limit, bad)) return error(400, bad);
  if (limit && (*limit == 0 || *limit > o.max_limit))
    return error(400, fmt::format("limit must be between 1 and {}", o.max_limit));
  const auto after = detail::query_param(req.query(), "after");
  if (!after && req.query().find("after=") != std::string_view::npos)
    return error(400, "malformed percent-encoding in after");
  const auto snap = cache.get();
  const auto& all = snap->topics;
  auto it = all.begin();
  if (after)
    it = std::upper_bound(all.begin(), all.end(), *after,
                          [](const std::string& a, const Hub::TopicInfo& t) { return a < t.name; });
  const std::size_t want = limit.value_or(o.default_limit);
  std::string out = R"({"topics":[)";
  std::size_t n = 0;
  for (; it != all.end() && n < want && (n == 0 || out.size() < o.max_page_bytes); ++it, ++n) {
    const auto& t = *it;
    fmt::format_to(
        std::back_inserter(out),
        R"({}{{"name":{},"members":{},"seq":{},"epoch":{},"rate":{:.1f},"history":{{"messages":{},"bytes":{}}}}})",
        n ? "," : "", detail::json_string(t.name), t.members, t.seq, t.epoch, t.rate, t.history_messages,
        t.history_bytes);
  }
  fmt::format_to(std::back_inserter(out), R"(],"total":{},"as_of_ms":{},"next":{}}})", all.size(), snap->taken_ms,
                 it == all.end() || n == 0 ? std::string("null") : detail::json_string(std::prev(it)->name));
  out += '\n';
  const auto cache_header = o.max_age.count() > 0 ? fmt::format("Cache-Control: max-age={}\r\n", o.max_age.count())
                                                  : std::string("Cache-Control: no-cache\r\n");
  return json(200, std::move(out), cache_header);
}

}  // namespace

HttpRoute topic_list_route(Hub& hub, TopicListOptions o) {
  auto cache = std::make_shared<TopicListCache>(hub, o.refresh);
  return {"/topics", false, [cache, o](const HttpRequest& req) { return list_topics(*cache, o, req); }};
}

}  // namespace fanout

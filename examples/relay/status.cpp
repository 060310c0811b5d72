#include "status.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace relay {
namespace {

// JSON string with quotes; control characters and invalid UTF-8 bytes become \u escapes or U+FFFD
// so a topic made of upstream bytes can never break the document.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // Copy a well-formed UTF-8 sequence; replace anything else.
      const std::size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
      bool ok = len > 0 && i + len <= s.size();
      for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (ok) {
        out.append(s.substr(i, len));
        i += len - 1;
      } else {
        out += "\\ufffd";
      }
    }
  }
  out += '"';
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double per_second(std::uint64_t now, std::uint64_t before, double seconds) {
  return now >= before && seconds > 0 ? static_cast<double>(now - before) / seconds : 0;
}

}  // namespace

StatusBoard::StatusBoard(Options options) : options_(options) {}

void StatusBoard::count(std::string_view topic, std::size_t bytes) {
  std::lock_guard lock(mutex_);
  auto it = topics_.find(std::string(topic));
  TopicCount* c;
  if (it != topics_.end())
    c = &it->second;
  else if (topics_.size() < options_.max_topics)
    c = &topics_.emplace(std::string(topic), TopicCount{}).first->second;
  else
    c = &other_;  // bounded memory whatever the upstream sends
  ++c->messages;
  c->bytes += bytes;
  ++routed_;
}

void StatusBoard::sample(const LiveTotals& t) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  const double dt = sampled_ ? std::chrono::duration<double>(now - last_at_).count() : 0;
  auto update = [dt](TopicCount& c) {
    c.rate = per_second(c.messages, c.messages_at_sample, dt);
    c.messages_at_sample = c.messages;
  };
  for (auto& [name, c] : topics_) update(c);
  update(other_);
  if (sampled_) {
    history_.push_back(Point{wall_ms(), per_second(routed_, routed_at_sample_, dt),
                             per_second(t.published, last_.published, dt), per_second(t.delivered, last_.delivered, dt),
                             per_second(t.dropped, last_.dropped, dt), t.connections});
    while (history_.size() > options_.history) history_.pop_front();
  }
  routed_at_sample_ = routed_;
  last_ = t;
  last_at_ = now;
  sampled_ = true;
}

std::string StatusBoard::json(const LiveTotals& live) const {
  std::string out;
  out.reserve(4096);
  std::lock_guard lock(mutex_);
  const auto uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const Point latest = history_.empty() ? Point{wall_ms(), 0, 0, 0, 0, live.connections} : history_.back();
  fmt::format_to(
      std::back_inserter(out),
      R"({{"now_ms":{},"uptime_s":{:.1f},"connections":{},"subscriptions":{},"topics":{},)"
      R"("routed":{},"published":{},"delivered":{},"dropped":{},"queued_bytes":{},"rates":{{"routed_per_s":{:.1f},)"
      R"("published_per_s":{:.1f},"delivered_per_s":{:.1f},"dropped_per_s":{:.1f}}},"upstreams":[)",
      wall_ms(), uptime, live.connections, live.subscriptions, live.topics, routed_, live.published, live.delivered,
      live.dropped, live.queued_bytes, latest.routed_per_s, latest.published_per_s, latest.delivered_per_s,
      latest.dropped_per_s);
  for (std::size_t i = 0; i < live.upstreams.size(); ++i) {
    const auto& u = live.upstreams[i];
    out += i ? ",{\"name\":" : "{\"name\":";
    append_json_string(out, u.name);
    out += ",\"state\":";
    append_json_string(out, u.state);
    out += ",\"url\":";
    append_json_string(out, u.url);
    fmt::format_to(std::back_inserter(out), R"(,"connects":{},"failures":{},"messages":{}}})", u.connects, u.failures,
                   u.messages);
  }
  fmt::format_to(std::back_inserter(out), R"(],"message_topics_tracked":{},"message_topics":[)", topics_.size());
  // The busiest k_json_topics, busiest first: the document stays small whatever status_max_topics is.
  std::vector<std::pair<const std::string*, const TopicCount*>> order;
  order.reserve(topics_.size());
  for (const auto& [name, c] : topics_) order.emplace_back(&name, &c);
  const auto busier = [](const auto& a, const auto& b) {
    return a.second->rate != b.second->rate ? a.second->rate > b.second->rate : *a.first < *b.first;
  };
  const std::size_t shown = std::min(order.size(), k_json_topics);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(), busier);
  order.resize(shown);
  static const std::string other_name(k_other_topic);
  if (other_.messages) order.emplace_back(&other_name, &other_);
  for (std::size_t i = 0; i < order.size(); ++i) {
    out += i ? ",{\"topic\":" : "{\"topic\":";
    append_json_string(out, *order[i].first);
    fmt::format_to(std::back_inserter(out), R"(,"messages":{},"bytes":{},"per_s":{:.1f}}})", order[i].second->messages,
                   order[i].second->bytes, order[i].second->rate);
  }
  out += "],\"history\":[";
  for (std::size_t i = 0; i < history_.size(); ++i) {
    const auto& p = history_[i];
    fmt::format_to(std::back_inserter(out), R"({}[{},{:.1f},{:.1f},{:.1f},{:.1f},{}])", i ? "," : "", p.t_ms,
                   p.routed_per_s, p.published_per_s, p.delivered_per_s, p.dropped_per_s, p.connections);
  }
  out += "]}";
  return out;
}

std::vector<fanout::MetricsRegistry::Sample> StatusBoard::topic_samples() const {
  std::vector<fanout::MetricsRegistry::Sample> out;
  std::lock_guard lock(mutex_);
  out.reserve(topics_.size() + 1);
  for (const auto& [name, c] : topics_) out.push_back({{{"topic", name}}, static_cast<double>(c.messages)});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.labels < b.labels; });
  if (other_.messages) out.push_back({{{"topic", std::string(k_other_topic)}}, static_cast<double>(other_.messages)});
  return out;
}

}  // namespace relay

#include "fanout/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

namespace fanout {

// ---------------------------------------------------------------- cells

ShardedCounter::ShardedCounter(std::size_t shards) : cells_(new Cell[shards == 0 ? 1 : shards]), shards_(shards) {}

std::uint64_t ShardedCounter::value() const noexcept {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < shards_; ++i) sum += cells_[i].value.load(std::memory_order_relaxed);
  return sum;
}

std::uint64_t Histogram::Snapshot::count() const noexcept {
  std::uint64_t n = 0;
  for (auto c : counts) n += c;
  return n;
}

void Histogram::Snapshot::merge(const Snapshot& other) {
  if (bounds.empty() && counts.empty()) {
    *this = other;
    return;
  }
  if (other.bounds != bounds) throw std::invalid_argument("fanout: merging histograms with different buckets");
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  sum += other.sum;
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  if (bounds_.empty()) throw std::invalid_argument("fanout: a histogram needs at least one bucket bound");
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) throw std::invalid_argument("fanout: histogram bounds must be finite");
    if (i > 0 && !(bounds_[i] > bounds_[i - 1]))
      throw std::invalid_argument("fanout: histogram bounds must be strictly ascending");
  }
  counts_.reset(new std::atomic<std::uint64_t>[bounds_.size() + 1]);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) noexcept {
  // A dozen or so bounds: a linear scan is as fast as a binary search and branch-predicts well.
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  auto& c = counts_[i];
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_.store(sum_.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) s.counts[i] = counts_[i].load(std::memory_order_relaxed);
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> Histogram::latency_bounds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

ShardedHistogram::ShardedHistogram(std::size_t shards, std::vector<double> upper_bounds) {
  for (std::size_t i = 0; i < std::max<std::size_t>(shards, 1); ++i)
    cells_.push_back(std::make_unique<Histogram>(upper_bounds));
}

Histogram::Snapshot ShardedHistogram::snapshot() const {
  Histogram::Snapshot s = cells_.front()->snapshot();
  for (std::size_t i = 1; i < cells_.size(); ++i) s.merge(cells_[i]->snapshot());
  return s;
}

// ---------------------------------------------------------------- registry

namespace {

bool valid_metric_name(std::string_view n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view n) {
  if (n.empty() || n.starts_with("__")) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Length of the well-formed UTF-8 sequence at s[i], or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t len = c < 0x80                 ? 1
                          : c >= 0xC2 && c <= 0xDF ? 2
                          : c >= 0xE0 && c <= 0xEF ? 3
                          : c >= 0xF0 && c <= 0xF4 ? 4
                                                   : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return len;
}

// HELP text escapes backslash and newline; label values also escape the double quote. Bytes that
// are not UTF-8 (a label made of upstream data, say) become U+FFFD: parsers reject the exposition
// otherwise.
void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else if (const std::size_t n = utf8_sequence(s, i)) {
      out.append(s.substr(i, n));
      i += n - 1;
    } else {
      out += "\xEF\xBF\xBD";
    }
  }
}

void append_value(std::string& out, double v) {
  if (std::isnan(v))
    out += "NaN";
  else if (std::isinf(v))
    out += v > 0 ? "+Inf" : "-Inf";
  else if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15)
    fmt::format_to(std::back_inserter(out), "{}", static_cast<std::int64_t>(v));
  else
    fmt::format_to(std::back_inserter(out), "{}", v);  // shortest text that reads back exactly
}

void append_labels(std::string& out, const MetricLabels& labels, std::string_view le = {}) {
  if (labels.empty() && le.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v, true);
    out += '"';
  }
  if (!le.empty()) {
    if (!first) out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

std::string bound_text(double b) {
  std::string s;
  append_value(s, b);
  return s;
}

const char* type_name(MetricsRegistry::Type t) {
  switch (t) {
    case MetricsRegistry::Type::counter: return "counter";
    case MetricsRegistry::Type::gauge: return "gauge";
    case MetricsRegistry::Type::histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

struct MetricsRegistry::State {
  struct Series {
    std::uint64_t id;
    MetricLabels labels;
    std::function<double()> scalar;
    std::function<Histogram::Snapshot()> histogram;
    std::function<std::vector<Sample>()> family;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<Series> series;
  };

  mutable std::mutex mutex;
  std::map<std::string, Family, std::less<>> families;
  std::uint64_t next_id = 1;

  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex);
    for (auto it = families.begin(); it != families.end(); ++it) {
      auto& s = it->second.series;
      auto found = std::find_if(s.begin(), s.end(), [id](const Series& x) { return x.id == id; });
      if (found == s.end()) continue;
      s.erase(found);
      if (s.empty()) families.erase(it);
      return;
    }
  }
};

MetricsRegistry::Registration::Registration(Registration&& o) noexcept
    : state_(std::move(o.state_)), id_(std::exchange(o.id_, 0)) {}

MetricsRegistry::Registration& MetricsRegistry::Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    reset();
    state_ = std::move(o.state_);
    id_ = std::exchange(o.id_, 0);
  }
  return *this;
}

void MetricsRegistry::Registration::reset() noexcept {
  if (id_ == 0) return;
  if (auto s = state_.lock()) static_cast<MetricsRegistry::State*>(s.get())->remove(id_);
  state_.reset();
  id_ = 0;
}

MetricsRegistry::MetricsRegistry() : state_(std::make_shared<State>()) {}
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Registration MetricsRegistry::add(std::string name, std::string help, Type type, MetricLabels labels,
                                                   std::function<double()> scalar,
                                                   std::function<Histogram::Snapshot()> histogram,
                                                   std::function<std::vector<Sample>()> family) {
  if (!valid_metric_name(name)) throw std::invalid_argument("fanout: bad metric name '" + name + "'");
  if (!scalar && !histogram && !family) throw std::invalid_argument("fanout: metric '" + name + "' has no callback");
  std::sort(labels.begin(), labels.end());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto& k = labels[i].first;
    if (!valid_label_name(k) || (type == Type::histogram && k == "le"))
      throw std::invalid_argument("fanout: bad label name '" + k + "' on metric '" + name + "'");
    if (i > 0 && labels[i - 1].first == k)
      throw std::invalid_argument("fanout: label '" + k + "' repeated on metric '" + name + "'");
  }
  std::lock_guard lock(state_->mutex);
  auto [it, inserted] = state_->families.try_emplace(name, State::Family{type, std::move(help), {}});
  auto& fam = it->second;
  if (!inserted && fam.type != type)
    throw std::invalid_argument(fmt::format("fanout: metric '{}' is already a {}", name, type_name(fam.type)));
  if (!inserted && !family) {
    for (const auto& s : fam.series)
      if (!s.family && s.labels == labels)
        throw std::invalid_argument("fanout: metric '" + name + "' already has a series with these labels");
  }
  const auto id = state_->next_id++;
  fam.series.push_back(
      State::Series{id, std::move(labels), std::move(scalar), std::move(histogram), std::move(family)});
  return Registration(std::weak_ptr<void>(state_), id);
}

MetricsRegistry::Registration MetricsRegistry::add_counter(std::string name, std::string help, MetricLabels labels,
                                                           std::function<double()> read) {
  if (!read) throw std::invalid_argument("fanout: metric '" + name + "' has no callback");
  return add(std::move(name), std::move(help), Type::counter, std::move(labels), std::move(read), {}, {});
}

MetricsRegistry::Registration MetricsRegistry::add_counter(std::string name, std::string help, MetricLabels labels,
                                                           const ShardedCounter& counter) {
  return add_counter(std::move(name), std::move(help), std::move(labels),
                     [&counter] { return static_cast<double>(counter.value()); });
}

MetricsRegistry::Registration MetricsRegistry::add_gauge(std::string name, std::string help, MetricLabels labels,
                                                         std::function<double()> read) {
  if (!read) throw std::invalid_argument("fanout: metric '" + name + "' has no callback");
  return add(std::move(name), std::move(help), Type::gauge, std::move(labels), std::move(read), {}, {});
}

MetricsRegistry::Registration MetricsRegistry::add_histogram(std::string name, std::string help, MetricLabels labels,
                                                             std::function<Histogram::Snapshot()> read) {
  if (!read) throw std::invalid_argument("fanout: metric '" + name + "' has no callback");
  return add(std::move(name), std::move(help), Type::histogram, std::move(labels), {}, std::move(read), {});
}

MetricsRegistry::Registration MetricsRegistry::add_histogram(std::string name, std::string help, MetricLabels labels,
                                                             const ShardedHistogram& histogram) {
  return add_histogram(std::move(name), std::move(help), std::move(labels),
                       [&histogram] { return histogram.snapshot(); });
}

MetricsRegistry::Registration MetricsRegistry::add_family(std::string name, std::string help, Type type,
                                                          std::function<std::vector<Sample>()> read) {
  if (type == Type::histogram) throw std::invalid_argument("fanout: add_family takes counters and gauges");
  if (!read) throw std::invalid_argument("fanout: metric '" + name + "' has no callback");
  return add(std::move(name), std::move(help), type, {}, {}, {}, std::move(read));
}

std::size_t MetricsRegistry::size() const {
  std::lock_guard lock(state_->mutex);
  std::size_t n = 0;
  for (const auto& [name, fam] : state_->families) n += fam.series.size();
  return n;
}

std::string MetricsRegistry::render() const {
  std::string out;
  std::lock_guard lock(state_->mutex);
  for (const auto& family : state_->families) {
    // Named references, not a structured binding: lambdas below capture them (clang 14, the fuzz build).
    const auto& name = family.first;
    const auto& fam = family.second;
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, fam.help, false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(fam.type);
    out += '\n';
    std::set<MetricLabels> seen;  // a label set appears once per family: the first wins
    auto scalar_line = [&](const MetricLabels& labels, double v) {
      if (!seen.insert(labels).second) return;
      out += name;
      append_labels(out, labels);
      out += ' ';
      append_value(out, v);
      out += '\n';
    };
    for (const auto& s : fam.series) {
      if (s.scalar) {
        scalar_line(s.labels, s.scalar());
      } else if (s.histogram) {
        const auto h = s.histogram();
        if (h.counts.size() != h.bounds.size() + 1) continue;  // a malformed snapshot would break the scrape
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < h.counts.size(); ++i) {
          cumulative += h.counts[i];
          out += name;
          out += "_bucket";
          append_labels(out, s.labels, i < h.bounds.size() ? bound_text(h.bounds[i]) : "+Inf");
          fmt::format_to(std::back_inserter(out), " {}\n", cumulative);
        }
        out += name;
        out += "_sum";
        append_labels(out, s.labels);
        out += ' ';
        append_value(out, h.sum);
        out += '\n';
        out += name;
        out += "_count";
        append_labels(out, s.labels);
        fmt::format_to(std::back_inserter(out), " {}\n", cumulative);
      }
    }
    for (const auto& s : fam.series) {
      if (!s.family) continue;
      for (auto& sample : s.family()) {
        // A bad label name from a callback leaves that series out rather than breaking the scrape.
        if (!std::all_of(sample.labels.begin(), sample.labels.end(),
                         [](const auto& kv) { return valid_label_name(kv.first); }))
          continue;
        std::sort(sample.labels.begin(), sample.labels.end());
        scalar_line(sample.labels, sample.value);
      }
    }
  }
  return out;
}

HttpRoute metrics_route(const MetricsRegistry& registry, std::string path) {
  return HttpRoute{std::move(path), false, [&registry](const HttpRequest&) {
                     return HttpResponse{.content_type = std::string(MetricsRegistry::content_type),
                                         .body = registry.render()};
                   }};
}

}  // namespace fanout

#include "bars.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>

namespace relay::stages {

struct BarBuilder::Parser {
  simdjson::dom::parser parser;
};

BarBuilder::BarBuilder(Options options) : options_(options), parser_(std::make_unique<Parser>()) {
  if (options_.interval.count() <= 0) throw std::invalid_argument("bars: interval must be positive");
}
BarBuilder::~BarBuilder() = default;
BarBuilder::BarBuilder(const BarBuilder& other)
    : options_(other.options_), parser_(std::make_unique<Parser>()), bars_(other.bars_) {}
BarBuilder& BarBuilder::operator=(const BarBuilder& other) {
  if (this != &other) {
    options_ = other.options_;
    bars_ = other.bars_;
  }
  return *this;
}
BarBuilder::BarBuilder(BarBuilder&&) noexcept = default;
BarBuilder& BarBuilder::operator=(BarBuilder&&) noexcept = default;

namespace {

double number(simdjson::dom::element e, std::string_view field) {
  double v = 0;
  if (e.is_string()) {
    const std::string_view s = e.get_string().value_unsafe();
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size())
      throw std::invalid_argument(fmt::format("bars: {} is not a number", field));
  } else if (e.is_number()) {
    v = e.get_double().value_unsafe();
  } else {
    throw std::invalid_argument(fmt::format("bars: {} is not a number", field));
  }
  return v;
}

}  // namespace

std::optional<BarBuilder::Bar> BarBuilder::add(std::string_view message) {
  simdjson::dom::element doc;
  if (parser_->parser.parse(message.data(), message.size()).get(doc))
    throw std::invalid_argument("bars: message is not JSON");
  simdjson::dom::element tick;
  if (doc.at_pointer("/data/0").get(tick)) throw std::invalid_argument("bars: no data[0]");
  std::string_view inst;
  simdjson::dom::element last, ts;
  if (tick["instId"].get(inst) || tick["last"].get(last) || tick["ts"].get(ts))
    throw std::invalid_argument("bars: data[0] lacks instId, last or ts");
  // The name goes into the derived topic and JSON unescaped: keep it to what instrument ids use.
  if (inst.empty() || inst.size() > 64 ||
      inst.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789-_./") != std::string_view::npos)
    throw std::invalid_argument("bars: instId is not a plain instrument id");
  const double px = number(last, "last");
  double size = 1;
  if (simdjson::dom::element sz; !tick["lastSz"].get(sz)) size = number(sz, "lastSz");
  const double t = number(ts, "ts");
  const auto ms = static_cast<std::int64_t>(t >= 1e14 ? t / 1000 : t);
  const std::int64_t start = ms - ms % options_.interval.count();

  std::optional<Bar> done;
  auto it = bars_.find(std::string(inst));
  if (it == bars_.end()) {
    if (bars_.size() >= options_.max_instruments)
      throw std::invalid_argument(fmt::format("bars: more than {} instruments", options_.max_instruments));
    it = bars_.emplace(std::string(inst), Bar{}).first;
  } else if (start > it->second.start_ms) {
    done = std::move(it->second);
    it->second = Bar{};
  } else if (start < it->second.start_ms) {
    return std::nullopt;  // a late tick of a bar already closed: ignored
  }
  Bar& b = it->second;
  if (b.ticks == 0) {
    b.inst = inst;
    b.start_ms = start;
    b.end_ms = start + options_.interval.count();
    b.open = b.high = b.low = px;
  }
  b.high = std::max(b.high, px);
  b.low = std::min(b.low, px);
  b.close = px;
  b.notional += px * size;
  b.volume += size;
  ++b.ticks;
  return done;
}

std::string BarBuilder::Bar::json() const {
  return fmt::format(
      R"({{"arg":{{"channel":"bars","instId":"{}"}},"data":[{{"instId":"{}","start":{},"end":{},"open":"{}","high":"{}",)"
      R"("low":"{}","close":"{}","vwap":"{}","volume":"{}","ticks":{}}}]}})",
      inst, inst, start_ms, end_ms, open, high, low, close, vwap(), volume, ticks);
}

}  // namespace relay::stages

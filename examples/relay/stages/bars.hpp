// Per-instrument OHLC + VWAP bars from an OKX-style ticker stream: fanout-relay's `[processor]
// stage = "bars"`, owned by the relay; examples/processing shows the same stage in a program of its own.
//
// Input, one message per tick (the bundled simulator's format; real OKX tickers look the same):
//   {"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","last":"64000.1","lastSz":"0.5","ts":...}]}
// `ts` is read in microseconds (the simulator) or milliseconds (OKX; values below 1e14), `lastSz`
// weights the VWAP; without it every tick weighs 1 (the simulator sends no size).
//
// Bars are cut by event time: a tick whose ts falls into a later interval closes the instrument's
// current bar, which is returned once, complete:
//   {"arg":{"channel":"bars","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","start":1700000000000,
//    "end":1700000001000,"open":"64000.1","high":"64002.5","low":"63999.8","close":"64001","vwap":"64000.9",
//    "volume":"12","ticks":12}]}          (start/end in milliseconds)
//
// Not thread-safe: one BarBuilder per processor worker (a topic always reaches the same worker).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace relay::stages {

class BarBuilder {
 public:
  struct Options {
    std::chrono::milliseconds interval{1000};
    std::size_t max_instruments = 10'000;  // ticks of further instruments are refused
  };

  struct Bar {
    std::string inst;
    std::int64_t start_ms = 0, end_ms = 0;
    double open = 0, high = 0, low = 0, close = 0;
    double notional = 0, volume = 0;  // sum(px * size), sum(size)
    std::uint64_t ticks = 0;
    double vwap() const { return volume > 0 ? notional / volume : close; }
    std::string json() const;  // the derived message (see above)
  };

  explicit BarBuilder(Options options);
  ~BarBuilder();
  BarBuilder(const BarBuilder& other);  // a copy gets a parser of its own (std::function copies handlers)
  BarBuilder& operator=(const BarBuilder& other);
  BarBuilder(BarBuilder&&) noexcept;
  BarBuilder& operator=(BarBuilder&&) noexcept;

  /// Adds one ticker message. Returns the bar it completed, if any. Throws std::invalid_argument
  /// for a message that is not a ticker (not JSON, no data[0].instId / last / ts).
  std::optional<Bar> add(std::string_view message);

  std::size_t instruments() const noexcept { return bars_.size(); }

 private:
  struct Parser;
  Options options_;
  std::unique_ptr<Parser> parser_;
  std::unordered_map<std::string, Bar> bars_;
};

}  // namespace relay::stages

// fanout-loadgen: HDR-style log-linear latency histogram (microseconds).
//
// Values 0..255 are exact; above that every power-of-two range is split into 128 linear
// sub-buckets, i.e. a relative error below 1/128 (2 significant decimal digits, as
// HdrHistogram with significantFigures=2). Range 0 .. 100 s; larger values are clamped.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace fanout::loadgen {

constexpr size_t hist_index(uint64_t v) {
  if (v < 256) return static_cast<size_t>(v);
  const int msb = 63 - std::countl_zero(v);
  const int shift = msb - 7;
  return 256 + static_cast<size_t>(shift - 1) * 128 + static_cast<size_t>((v >> shift) - 128);
}

class Histogram {
 public:
  static constexpr uint64_t k_max_value = 100'000'000;  // 100 s in us

  static constexpr size_t index_of(uint64_t v) { return hist_index(v); }
  static constexpr size_t k_buckets = hist_index(k_max_value) + 1;

  static constexpr uint64_t lowest_of(size_t i) {
    if (i < 256) return i;
    const size_t shift = (i - 256) / 128 + 1;
    const uint64_t sub = (i - 256) % 128 + 128;
    return sub << shift;
  }
  static constexpr uint64_t highest_of(size_t i) {
    if (i < 256) return i;
    const size_t shift = (i - 256) / 128 + 1;
    const uint64_t sub = (i - 256) % 128 + 128;
    return ((sub + 1) << shift) - 1;
  }

  void record(uint64_t v) {
    if (v > k_max_value) {
      v = k_max_value;
      ++clamped_;
    }
    ++counts_[index_of(v)];
    ++total_;
    sum_ += v;
    if (v > max_) max_ = v;
  }

  // Merging (parent side).
  void add_bucket(size_t i, uint64_t n) {
    if (i < k_buckets) counts_[i] += n;
  }
  void add_meta(uint64_t total, uint64_t sum, uint64_t max, uint64_t clamped) {
    total_ += total;
    sum_ += sum;
    max_ = std::max(max_, max);
    clamped_ += clamped;
  }

  // HdrHistogram convention: the highest value equivalent to the bucket holding the
  // requested rank, capped at the exact maximum.
  uint64_t percentile(double pct) const {
    if (total_ == 0) return 0;
    double want = std::ceil(pct / 100.0 * static_cast<double>(total_) - 1e-9);
    uint64_t target = want < 1 ? 1 : static_cast<uint64_t>(want);
    if (target > total_) target = total_;
    uint64_t acc = 0;
    for (size_t i = 0; i < k_buckets; ++i) {
      acc += counts_[i];
      if (acc >= target) return std::min(highest_of(i), max_);
    }
    return max_;
  }

  uint64_t total() const { return total_; }
  uint64_t sum() const { return sum_; }
  uint64_t max() const { return max_; }
  uint64_t clamped() const { return clamped_; }
  uint64_t count_at(size_t i) const { return counts_[i]; }
  double mean() const { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0; }

 private:
  std::array<uint64_t, k_buckets> counts_{};
  uint64_t total_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t clamped_ = 0;
};

static_assert(Histogram::index_of(255) == 255);
static_assert(Histogram::index_of(256) == 256);
static_assert(Histogram::index_of(511) == 383);
static_assert(Histogram::index_of(512) == 384);
static_assert(Histogram::lowest_of(Histogram::index_of(123456)) <= 123456);
static_assert(Histogram::highest_of(Histogram::index_of(123456)) >= 123456);
static_assert(Histogram::lowest_of(384) == 512 && Histogram::highest_of(383) == 511);

}  // namespace fanout::loadgen

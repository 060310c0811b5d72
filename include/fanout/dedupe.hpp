// fanout/dedupe.hpp — drops messages already seen, within a bounded window, so two upstream
// connections to the same stream (hot standby) deliver each message once.
//
// Identity is (topic, seq) when the router gives a seq, else (topic, key, hash of the payload).
// The window is bounded by count per topic and by age, so memory stays bounded.
//
//   fanout::Dedupe dedupe({.window = 4096});
//   if (dedupe.first_time(routed, payload)) hub.publish(routed.topic, payload);
//
// Thread safety: one thread at a time (the relay calls it from the ingest thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "fanout/export.hpp"
#include "fanout/router.hpp"

namespace fanout {

class FANOUT_API Dedupe {
 public:
  struct Options {
    std::size_t window = 4096;                                     // identities remembered per topic
    std::chrono::milliseconds max_age = std::chrono::seconds(10);  // older ones are forgotten
    std::size_t max_topics = 100'000;                              // topics tracked at once
  };
  Dedupe();
  explicit Dedupe(Options options);
  ~Dedupe();
  Dedupe(Dedupe&&) noexcept;
  Dedupe& operator=(Dedupe&&) noexcept;

  /// True the first time this message is seen within the window; false for a duplicate.
  bool first_time(const Routed& route, std::string_view payload);
  std::uint64_t duplicates() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fanout

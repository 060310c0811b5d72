// GET /readyz: whether this relay should get new clients. 503 until it has data to give them (an
// upstream live or, over Redis, the bus connected) and again once it is draining; 200 otherwise.
// GET /healthz (the library's) stays liveness: 200 while the process serves HTTP at all.
//
// Thread safety: the route's handler runs on shard threads, begin_drain() on any thread; `why_not`
// must be callable from any thread.
#pragma once

#include <fanout/http.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

namespace relay {

class Readiness {
 public:
  /// `why_not`: "" when ready, else the reason ("no upstream live", "bus not connected").
  explicit Readiness(std::function<std::string()> why_not);

  /// Ready no more, whatever `why_not` says: the relay is shutting down.
  void begin_drain() noexcept;

  /// GET /readyz: 200 {"ready":true} or 503 {"ready":false,"reason":"..."}, never cached.
  fanout::HttpRoute route() const;

 private:
  struct State {
    std::function<std::string()> why_not;
    std::atomic<bool> draining{false};
  };
  std::shared_ptr<State> state_;  // shared with the route, which servers keep
};

}  // namespace relay

// fanout/detail/upstream_fsm.hpp — the upstream client's connection logic as an I/O-free state machine.
//
// No sockets, no timers, no clock reads: every input carries `now`, every output is an action the
// driver (src/ingest/upstream.cpp) performs, and next_deadline() is when the driver must call timer().
// It owns endpoint rotation, backoff with jitter, the failure count and its reset, the connect deadline,
// the heartbeat schedule, stale detection and the attempt limit; tests/unit/upstream_fsm_test.cpp
// drives it with a fake clock.
//
//   stopped --start--> connecting --connected--> handshaking --handshake_done--> live
//      ^                   |  ^                       |                           |
//      |  (attempt limit)  |  +--- timer(retry_at) ---+--- failed / timeout / stale / closed
//      +-------------------+---------------------- backing_off <------------------+
//
// A failure always counts. The count resets only when a connection stayed live for `stable_after`,
// so a server that accepts and closes at once sees the delay grow. A stable connection that drops is
// retried on the same endpoint; any other failure moves on to the next one, in order, passing over
// endpoints the driver says are taken (a hot-standby partner is live there), so the two connections
// of a pair stay on different endpoints while two exist.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <system_error>

#include "fanout/error.hpp"

namespace fanout::detail {

class UpstreamFsm {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Ms = std::chrono::milliseconds;

  struct Config {
    std::size_t endpoints = 1;
    Ms connect_timeout{10'000};  // TCP + TLS + upgrade; 0: none
    Ms heartbeat_interval{0};    // 0: no heartbeat
    Ms stale_timeout{0};         // no message for this long ends the connection; 0: off
    Ms backoff_initial{250};
    Ms backoff_max{30'000};
    double jitter = 1.0;              // random share of the delay: 1 full jitter, 0 none
    int max_reconnect_attempts = -1;  // failures in a row tolerated before giving up; -1: never give up
    Ms stable_after{5'000};           // live this long: the failure count starts over
    std::function<Ms(unsigned attempt)> custom_delay{};  // replaces backoff and jitter when set
    std::function<double()> random{};                    // uniform in [0, 1); empty: always 1
    std::size_t first_endpoint = 0;                      // the first attempt's endpoint (modulo endpoints)
    // True for an endpoint to pass over when moving on; when every other one is, the same is retried.
    std::function<bool(std::size_t endpoint)> endpoint_taken{};
  };

  enum class Phase : std::uint8_t { stopped, connecting, handshaking, live, backing_off };

  struct Action {
    enum class Kind : std::uint8_t {
      connect,         // open a connection (TCP, TLS) to endpoint `url`; then connected() or failed()
      send_handshake,  // send the upgrade request; then handshake_done() or failed()
      subscribe,       // send login and subscribe messages
      heartbeat,       // send one heartbeat
      close,           // close the connection or abandon the attempt: report nothing more about it
      state,           // the phase changed to `phase`; `error` and `delay` say why and for how long
      connected,       // the first connection since start() is live
      reconnected,     // live again after a connection was lost
      disconnected,    // a live connection ended with `error`
    };
    Kind kind;
    Phase phase = Phase::stopped;
    std::size_t url = 0;
    std::error_code error{};
    Ms delay{0};
  };

  /// The actions of one input, in order.
  class Actions {
   public:
    const Action* begin() const noexcept { return items_.data(); }
    const Action* end() const noexcept { return items_.data() + size_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const Action& operator[](std::size_t i) const noexcept { return items_[i]; }
    void push(Action a) noexcept { items_[size_++] = a; }

   private:
    std::array<Action, 6> items_{};
    std::size_t size_ = 0;
  };

  explicit UpstreamFsm(Config c) : config_(std::move(c)) {
    if (config_.endpoints == 0) config_.endpoints = 1;
    config_.jitter = std::clamp(config_.jitter, 0.0, 1.0);
  }

  Phase phase() const noexcept { return phase_; }
  std::size_t url_index() const noexcept { return url_; }
  unsigned failures_in_row() const noexcept { return failures_; }
  const Config& config() const noexcept { return config_; }

  /// When timer() must be called next; TimePoint::max() for never.
  TimePoint next_deadline() const noexcept {
    switch (phase_) {
      case Phase::connecting:
      case Phase::handshaking: return connect_deadline_;
      case Phase::backing_off: return retry_at_;
      case Phase::live: {
        auto d = TimePoint::max();
        if (config_.stale_timeout.count() > 0) d = std::min(d, last_activity_ + config_.stale_timeout);
        if (config_.heartbeat_interval.count() > 0) d = std::min(d, next_heartbeat_);
        return d;
      }
      case Phase::stopped: break;
    }
    return TimePoint::max();
  }

  Actions start(TimePoint now) {
    Actions out;
    if (phase_ != Phase::stopped) return out;
    failures_ = 0;
    ever_live_ = false;
    url_ = config_.first_endpoint % config_.endpoints;
    begin_attempt(now, out);
    return out;
  }

  Actions stop(TimePoint) {
    Actions out;
    if (phase_ == Phase::stopped) return out;
    if (phase_ != Phase::backing_off) out.push({.kind = Action::Kind::close});
    phase_ = Phase::stopped;
    out.push({.kind = Action::Kind::state, .phase = phase_, .url = url_});
    return out;
  }

  /// TCP (and TLS) is up.
  Actions connected(TimePoint) {
    Actions out;
    if (phase_ != Phase::connecting) return out;
    phase_ = Phase::handshaking;
    out.push({.kind = Action::Kind::send_handshake, .url = url_});
    return out;
  }

  /// The server accepted the upgrade.
  Actions handshake_done(TimePoint now) {
    Actions out;
    if (phase_ != Phase::handshaking) return out;
    phase_ = Phase::live;
    live_since_ = last_activity_ = now;
    next_heartbeat_ = now + config_.heartbeat_interval;
    out.push({.kind = Action::Kind::state, .phase = phase_, .url = url_});
    out.push({.kind = Action::Kind::subscribe, .url = url_});
    out.push({.kind = ever_live_ ? Action::Kind::reconnected : Action::Kind::connected, .url = url_});
    ever_live_ = true;
    return out;
  }

  /// The attempt or the live connection ended: resolve, connect, TLS or upgrade failed, the server
  /// closed, a read or write failed, or the input was bad.
  Actions failed(TimePoint now, std::error_code ec) {
    Actions out;
    if (phase_ != Phase::connecting && phase_ != Phase::handshaking && phase_ != Phase::live) return out;
    const bool was_live = phase_ == Phase::live;
    out.push({.kind = Action::Kind::close});
    if (was_live) out.push({.kind = Action::Kind::disconnected, .url = url_, .error = ec});
    if (was_live && now - live_since_ >= config_.stable_after)
      failures_ = 0;  // it worked for a while: start over, on the same endpoint
    else
      url_ = next_endpoint(url_);
    ++failures_;
    if (config_.max_reconnect_attempts >= 0 && failures_ > static_cast<unsigned>(config_.max_reconnect_attempts)) {
      phase_ = Phase::stopped;
      out.push({.kind = Action::Kind::state, .phase = phase_, .url = url_, .error = Errc::max_attempts_reached});
      return out;
    }
    const Ms delay = delay_for(failures_);
    retry_at_ = now + delay;
    phase_ = Phase::backing_off;
    out.push({.kind = Action::Kind::state, .phase = phase_, .url = url_, .error = ec, .delay = delay});
    return out;
  }
  Actions handshake_failed(TimePoint now, std::error_code ec) { return failed(now, ec); }
  Actions closed(TimePoint now, std::error_code ec) { return failed(now, ec); }

  /// Anything arrived on the live connection (data, pong, ping): it is not stale.
  void message(TimePoint now) noexcept {
    if (phase_ == Phase::live) last_activity_ = now;
  }

  /// Deadlines that passed by `now`: connect timeout, retry, stale stream, heartbeat.
  Actions timer(TimePoint now) {
    Actions out;
    switch (phase_) {
      case Phase::connecting:
      case Phase::handshaking:
        if (now >= connect_deadline_) return failed(now, Errc::connect_timeout);
        break;
      case Phase::backing_off:
        if (now >= retry_at_) begin_attempt(now, out);
        break;
      case Phase::live:
        if (config_.stale_timeout.count() > 0 && now - last_activity_ >= config_.stale_timeout)
          return failed(now, Errc::stale_stream);
        if (config_.heartbeat_interval.count() > 0 && now >= next_heartbeat_) {
          next_heartbeat_ = now + config_.heartbeat_interval;  // from now: no burst after a stall
          out.push({.kind = Action::Kind::heartbeat, .url = url_});
        }
        break;
      case Phase::stopped: break;
    }
    return out;
  }

  /// The wait before retry number `attempt` (1 = after the first failure).
  Ms delay_for(unsigned attempt) const {
    if (config_.custom_delay) return std::max(Ms{0}, config_.custom_delay(attempt));
    const auto initial = std::max<std::int64_t>(config_.backoff_initial.count(), 1);
    const auto cap = std::max<std::int64_t>(config_.backoff_max.count(), initial);
    const unsigned shift = std::min(attempt > 0 ? attempt - 1 : 0u, 30u);
    const std::int64_t base = std::min(cap, initial << shift);
    const double r = config_.random ? std::clamp(config_.random(), 0.0, 1.0) : 1.0;
    const double d = static_cast<double>(base) * (1.0 - config_.jitter + config_.jitter * r);
    return Ms{std::clamp<std::int64_t>(static_cast<std::int64_t>(d), 0, base)};
  }

 private:
  /// The next endpoint in order that is not taken; `from` itself when every other one is.
  std::size_t next_endpoint(std::size_t from) const {
    for (std::size_t step = 1; step < config_.endpoints; ++step) {
      const std::size_t i = (from + step) % config_.endpoints;
      if (!config_.endpoint_taken || !config_.endpoint_taken(i)) return i;
    }
    return from;
  }

  void begin_attempt(TimePoint now, Actions& out) {
    phase_ = Phase::connecting;
    connect_deadline_ = config_.connect_timeout.count() > 0 ? now + config_.connect_timeout : TimePoint::max();
    out.push({.kind = Action::Kind::state, .phase = phase_, .url = url_});
    out.push({.kind = Action::Kind::connect, .url = url_});
  }

  Config config_;
  Phase phase_ = Phase::stopped;
  std::size_t url_ = 0;
  unsigned failures_ = 0;  // in a row, since start() or the last stable connection
  bool ever_live_ = false;
  TimePoint connect_deadline_{};
  TimePoint retry_at_{};
  TimePoint live_since_{};
  TimePoint last_activity_{};
  TimePoint next_heartbeat_{};
};

}  // namespace fanout::detail

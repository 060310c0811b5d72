// fanout/detail/timer_wheel.hpp — a hashed timing wheel: many deadlines on one timer, I/O-free.
//
// A shard's throttled lanes (lane.hpp) each wait for their next tick here, so one asio timer per
// shard serves every throttled subscription instead of a timer per client. Time is counted in ticks
// (the driver decides how long one is); an entry due further away than the wheel's span waits
// through whole turns (its due tick is kept, so it fires on time). Entries are intrusive: scheduling
// and cancelling allocate nothing and cost O(1); advancing visits each slot passed once.
//
// Thread safety: none; a shard's wheel is touched by its thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace fanout::detail {

/// Something a TimerWheel can hold; derive from it. Unlinked when not scheduled.
struct WheelEntry {
  WheelEntry() = default;
  WheelEntry(const WheelEntry&) = delete;
  WheelEntry& operator=(const WheelEntry&) = delete;

  bool scheduled() const noexcept { return prev_ != nullptr; }
  std::uint64_t due() const noexcept { return due_; }

 private:
  friend class TimerWheel;
  WheelEntry* prev_ = nullptr;
  WheelEntry* next_ = nullptr;
  std::uint64_t due_ = 0;
};

class TimerWheel {
 public:
  /// `slots`: ticks in one turn of the wheel (entries due within it cost nothing extra).
  explicit TimerWheel(std::size_t slots = 1024) : slots_(slots == 0 ? 1 : slots) {
    for (auto& s : slots_) s.prev_ = s.next_ = &s;  // each slot: a circular list around its sentinel
  }
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  /// The last tick advanced to.
  std::uint64_t now() const noexcept { return now_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// Fires `e` at tick `due` (at the next tick when `due` is not after now()). Reschedules it when
  /// it was scheduled already.
  void schedule(WheelEntry& e, std::uint64_t due) noexcept {
    cancel(e);
    if (due <= now_) due = now_ + 1;
    e.due_ = due;
    link_before(slots_[due % slots_.size()], e);
    ++size_;
  }
  /// Takes `e` out; a no-op when it is not scheduled.
  void cancel(WheelEntry& e) noexcept {
    if (!e.scheduled()) return;
    unlink(e);
    --size_;
  }

  /// The first tick after now() whose slot holds an entry (it may be due a turn later: advancing
  /// to it then fires nothing, and the next call looks further). Empty when nothing is scheduled.
  std::optional<std::uint64_t> next_wake() const noexcept {
    if (size_ == 0) return std::nullopt;
    for (std::uint64_t t = now_ + 1; t <= now_ + slots_.size(); ++t) {
      const WheelEntry& head = slots_[t % slots_.size()];
      if (head.next_ != &head) return t;
    }
    return std::nullopt;  // unreachable while size_ > 0
  }

  /// Advances to tick `to`, calling `fire(WheelEntry&)` for every entry due by then, slot by slot.
  /// `fire` may schedule or cancel any entry (the fired one included) and destroy cancelled ones.
  template <class Fire>
  void advance(std::uint64_t to, Fire&& fire) {
    if (to <= now_) return;
    // Past a whole turn every slot is visited once.
    const std::uint64_t first = to - now_ > slots_.size() ? to - slots_.size() + 1 : now_ + 1;
    now_ = to;
    for (std::uint64_t t = first; t <= to && size_ > 0; ++t) {
      WheelEntry& head = slots_[t % slots_.size()];
      // The due entries move to a list of their own first: firing may reschedule into this very slot
      // (a turn later), or cancel an entry that waits its turn to fire (it just leaves that list).
      WheelEntry ready;
      ready.prev_ = ready.next_ = &ready;
      for (WheelEntry* e = head.next_; e != &head;) {
        WheelEntry* const next = e->next_;
        if (e->due_ <= to) {
          unlink(*e);
          link_before(ready, *e);
        }
        e = next;
      }
      while (ready.next_ != &ready) {
        WheelEntry& e = *ready.next_;
        cancel(e);
        fire(e);
      }
    }
  }

 private:
  static void link_before(WheelEntry& head, WheelEntry& e) noexcept {
    e.prev_ = head.prev_;
    e.next_ = &head;
    head.prev_->next_ = &e;
    head.prev_ = &e;
  }
  static void unlink(WheelEntry& e) noexcept {
    e.prev_->next_ = e.next_;
    e.next_->prev_ = e.prev_;
    e.prev_ = e.next_ = nullptr;
  }

  std::vector<WheelEntry> slots_;
  std::uint64_t now_ = 0;
  std::size_t size_ = 0;
};

}  // namespace fanout::detail

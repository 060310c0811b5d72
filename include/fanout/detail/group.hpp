// fanout/detail/group.hpp — the members of one topic on one shard, and the frames they pull.
//
// Delivery is pulled, not pushed. A publish appends its frame to the group's log once; the walk
// over the members only flags those not flagged yet (in steady state: none, so it reads a byte per
// member). A flagged member moves the frames past its cursor into its own queue when it is about
// to write, while its session is in cache anyway. Pushing every frame into every queue at publish
// time touched every session per publish while they were out of cache (docs/benchmarks.md).
// A member whose socket is blocked (or that is closing) is not flagged: it takes frames at once,
// so its queue and its backpressure policy see them as they come, as with eager delivery.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fanout/frame.hpp"
#include "fanout/detail/member.hpp"
#include "fanout/group.hpp"

namespace fanout {
namespace detail {

/// A published frame (and its envelope, if any member wants envelopes).
struct PendingFrame {
  FrameRef frame;
  FrameRef envelope;
  FrameRef delta_form;  // for "delta":"fossil" members (detail/delta_forms.hpp), when there are any
};

/// Touched only by the shard's thread, except `pending` (guarded by the owning Topic's mutex).
struct Group {
  std::vector<Member*> members;
  /// Member i has been handed every frame with seq <= cursor[i]. It starts at the topic's seq when
  /// the member joins: its replay had what came before, and no frame in the log is newer than that.
  std::vector<std::uint64_t> cursor;
  /// 1: member i will pull what is past its cursor at its next write (its session is dirty).
  std::vector<std::uint8_t> flagged;
  std::size_t flagged_count = 0;
  /// Frames walked here that a flagged member has not pulled yet, in seq order; own references.
  std::vector<PendingFrame> log;
  std::size_t log_bytes = 0;
  /// Publishers append, the shard takes them all in one task: publishes that arrive while the shard
  /// is busy writing join one walk.
  std::vector<PendingFrame> pending;

  /// Bounds on the log (fanout::Group::Limits, Hub::Options::group); set once, when the topic is made.
  fanout::Group::Limits limits{};

  std::size_t add_member(Member* s, std::uint64_t seq) {
    members.push_back(s);
    cursor.push_back(seq);
    flagged.push_back(0);
    return members.size() - 1;
  }
  /// Swap-remove; returns the member now at `i` (it must learn its new place), or nullptr.
  Member* remove_member(std::size_t i) {
    if (flagged[i]) --flagged_count;
    Member* moved = nullptr;
    if (i + 1 != members.size()) {
      members[i] = members.back();
      cursor[i] = cursor.back();
      flagged[i] = flagged.back();
      moved = members[i];
    }
    members.pop_back();
    cursor.pop_back();
    flagged.pop_back();
    if (members.empty()) {
      members.shrink_to_fit();
      cursor.shrink_to_fit();
      flagged.shrink_to_fit();
      clear_log();
      log.shrink_to_fit();
    }
    return moved;
  }

  void append(PendingFrame&& p) {
    log_bytes += p.frame->size();
    log.push_back(std::move(p));
  }
  /// The log's frames with seq > `seq`.
  std::span<const PendingFrame> after(std::uint64_t seq) const noexcept {
    auto it =
        std::partition_point(log.begin(), log.end(), [seq](const PendingFrame& p) { return p.frame->seq() <= seq; });
    return {it, log.end()};
  }
  /// Member i will pull at its next write (its session is dirty).
  void flag(std::size_t i) noexcept {
    flagged[i] = 1;
    ++flagged_count;
  }
  /// Member i has pulled. The last flagged member to pull empties the log: everyone has it all
  /// (a quiet topic then holds no frames here, only in its history).
  void unflag(std::size_t i) noexcept {
    flagged[i] = 0;
    if (--flagged_count == 0) clear_log();
  }
  void clear_log() noexcept {
    log.clear();
    log_bytes = 0;
  }
  /// Drops the frames every member has been handed (flagged members are the only ones behind).
  void trim() {
    if (flagged_count == 0) {
      clear_log();
      return;
    }
    std::uint64_t low = UINT64_MAX;
    for (std::size_t i = 0; i < cursor.size(); ++i)
      if (flagged[i]) low = std::min(low, cursor[i]);
    const auto keep = after(low);
    const auto drop = static_cast<std::size_t>(keep.data() - log.data());
    for (std::size_t k = 0; k < drop; ++k) log_bytes -= log[k].frame->size();
    log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  bool log_over_limit() const noexcept {
    return log.size() > limits.log_max_frames || log_bytes > limits.log_max_bytes;
  }
  /// After a walk: keeps the log within its bounds. Past limits.log_trim_frames (or with nobody flagged)
  /// it drops what every member has; past the max, someone's sweep is too long to keep waiting for:
  /// `pull(i)` hands each flagged member i what it lacks now (it unflags i), and the log empties.
  template <class Pull>
  void bound_log(Pull&& pull) {
    if (log.size() > limits.log_trim_frames || flagged_count == 0) trim();
    if (!log_over_limit()) return;
    for (std::size_t i = 0; i < members.size(); ++i)
      if (flagged[i]) pull(i);
    clear_log();
  }
};

}  // namespace detail
}  // namespace fanout

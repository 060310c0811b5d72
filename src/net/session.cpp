#include "fanout/session.hpp"

#include <simdjson.h>

#include <asio/post.hpp>
#include <atomic>
#include <cstring>

#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/frame_reader.hpp"
#include "fanout/detail/handshake_reader.hpp"
#include "fanout/http.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_auth.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/detail/topic.hpp"
#include "fanout/hub.hpp"
#include "fanout/server.hpp"

namespace fanout {

namespace {
std::atomic<std::uint64_t> next_session_id{1};
constexpr std::uint8_t k_quiet_ticks_before_shrink = 40;  // 10 s at the default 250 ms tick
}  // namespace

Session::Session(detail::ServerShard& owner, asio::ip::tcp::endpoint remote)
    : owner_(owner),
      shard_(owner.shard),
      hub_(owner.server.hub()),
      options_(owner.server.options().session),
      last_read_(std::chrono::steady_clock::now()),
      id_(next_session_id.fetch_add(1, std::memory_order_relaxed)),
      remote_(std::move(remote)) {}

Session::~Session() = default;

std::size_t Session::shard() const noexcept { return shard_.index(); }

void Session::set_group_index(const detail::Topic* t, std::size_t i) noexcept {
  for (auto& s : subs_)
    if (s.topic.get() == t) {
      s.index = i;
      return;
    }
}

void Session::set_policy(std::shared_ptr<BackpressurePolicy> policy) {
  if (!custom_) custom_ = std::make_unique<Custom>();
  custom_->policy = std::move(policy);
}

std::any& Session::user_data() {
  if (!custom_) custom_ = std::make_unique<Custom>();
  return custom_->user_data;
}

const std::any& Session::user_data() const noexcept {
  static const std::any none;
  return custom_ ? custom_->user_data : none;
}

// ---------------------------------------------------------------- outbound

void Session::deliver(FrameRef frame, const detail::Topic& topic, BackpressureCounters& counters) {
  if (!enqueue(std::move(frame), topic, counters)) return;
  // A full batch goes out now, so a burst does not wait for the end of the loop turn (and fill the
  // queue to its limit) before the first byte is written.
  if (queue_.bytes() >= options_.max_write_bytes && !waiting_writable_)
    flush();
  else
    schedule_flush();
}

bool Session::enqueue(FrameRef frame, const detail::Topic& topic, BackpressureCounters& counters) {
  if (state_ != State::open) return false;
  delivered_since_tick_ = true;
  const OverflowContext context{.topic = topic.name,
                                .topic_id = topic.id,
                                .key_hash = frame->key_hash(),
                                .session = this,
                                .limits = options_.queue,
                                .counters = counters};
  switch (queue_.push(std::move(frame), context, policy())) {
    case OutboundQueue::Result::queued: return true;
    case OutboundQueue::Result::dropped: return false;
    case OutboundQueue::Result::disconnect: close(CloseCode::policy_violation, "slow consumer"); return false;
  }
  return false;
}

void Session::pull(detail::Topic& topic, detail::Group& group, std::size_t i, BackpressureCounters& counters) {
  const auto frames = group.after(group.cursor[i]);
  if (!frames.empty()) {
    group.cursor[i] = frames.back().frame->seq();
    for (const auto& p : frames) enqueue(envelope_ && p.envelope ? p.envelope : p.frame, topic, counters);
    detail::ShardCounters::add(shard_.counters.deliveries, frames.size());
  }
  if (group.flagged[i]) {
    --pulls_due_;
    group.unflag(i);  // after the loop above: it may empty the log
  }
}

void Session::pull_due() {
  if (pulls_due_ == 0) return;
  BackpressureCounters counters;
  for (const auto& sub : subs_) {
    auto& group = sub.topic->groups[shard_.index()];
    if (group.flagged[sub.index]) Session::pull(*sub.topic, group, sub.index, counters);  // not virtual
  }
  shard_.add_counters(counters);
}

void Session::schedule_flush() {
  if (dirty_ || waiting_writable_ || state_ == State::closed) return;
  dirty_ = true;
  shard_.mark_dirty(this);
}

void Session::send(std::string_view payload, Opcode op) {
  if (state_ != State::open) return;
  queue_.push_control(Frame::make(op, payload));
  schedule_flush();
}

void Session::close(CloseCode code, std::string_view reason) {
  if (state_ != State::open) return;
  // What was published before the close goes out before the close frame, as if it had been queued.
  if (code != CloseCode::policy_violation) pull_due();
  if (state_ != State::open) return;  // the pull met a full queue and the policy disconnected
  state_ = State::closing;
  closing_since_ = std::chrono::steady_clock::now();
  if (code == CloseCode::policy_violation) {
    // The client is not reading: what is queued would hold the close frame back for good.
    queue_.clear_unsent();
  }
  queue_.push_control(Frame::make_close(static_cast<std::uint16_t>(code), reason));
  close_after_flush_ = true;
  schedule_flush();
}

void Session::on_written(std::size_t n) {
  queue_.consume(n);
  if (queue_.empty() && close_after_flush_) {
    if (state_ == State::handshake || close_received_) {
      finish();
    } else {
      // Our close frame is out; the peer's reply (or close_timeout) ends the session.
      shutdown_send();
    }
  }
}

// ---------------------------------------------------------------- inbound

bool Session::on_bytes(std::span<const std::byte> data) {
  last_read_ = std::chrono::steady_clock::now();
  ping_outstanding_ = false;
  if (state_ == State::handshake) return on_handshake_bytes(data);
  if (state_ == State::open || (state_ == State::closing && !close_received_)) return on_ws_bytes(data);
  return state_ != State::closed;
}

void Session::on_read_end() {
  // The peer is gone (or half-closed after our close frame): nothing more can be delivered.
  finish();
}

bool Session::on_ws_bytes(std::span<const std::byte> data) {
  // The reader (and wslay's input buffer) lives only while a frame or message is half-received.
  if (!ws_) ws_ = std::make_unique<detail::FrameReader>(options_.max_message_bytes);
  const bool framed = ws_->feed(data);
  if (state_ == State::closed) return false;
  if (!framed) {
    // Answer 1002 ourselves instead of wslay's empty close frame.
    ws_.reset();
    close_received_ = true;  // nothing more will be read; do not wait for the peer's reply
    fail(CloseCode::protocol_error, "protocol error");
    return state_ != State::closed;
  }
  // wslay's answers, unless our own close frame is already queued: after it nothing may follow.
  auto& out = ws_->replies();
  if (state_ == State::closing && close_after_flush_) out.clear();
  if (!out.empty()) {
    queue_.push_control(Frame::make_raw(std::as_bytes(std::span(out))));
    out.clear();
    schedule_flush();
  }
  for (auto& [op, payload] : ws_->take_messages()) on_message(op, payload);
  if (state_ == State::closed) return false;
  if (!ws_) return true;  // on_message failed the connection
  if (ws_->close_received()) close_received_ = true;
  if (ws_->finished()) {
    // wslay failed the connection (its close frame is queued) or answered the client's close.
    if (state_ == State::open) {
      state_ = State::closing;
      closing_since_ = std::chrono::steady_clock::now();
    }
    close_after_flush_ = true;
    close_received_ = true;  // reading is over either way
    ws_.reset();
    if (queue_.empty()) finish();
    return state_ != State::closed;
  }
  if (ws_->idle()) ws_.reset();
  return true;
}

void Session::fail(CloseCode code, std::string_view reason) {
  if (state_ == State::open) {
    close(code, reason);
  } else if (state_ == State::closing && !close_after_flush_) {
    close_after_flush_ = true;
  }
}

void Session::on_message(Opcode op, std::string_view payload) {
  switch (op) {
    case Opcode::text:
      // wslay checks UTF-8 as frames arrive; this guards the control parser all the same.
      if (!simdjson::validate_utf8(payload.data(), payload.size())) {
        ws_.reset();
        close_received_ = true;
        fail(CloseCode::invalid_payload, "text message is not valid UTF-8");
        return;
      }
      if (state_ == State::open) on_control(payload);
      return;
    case Opcode::binary:
      if (state_ == State::open)
        reply_error(static_cast<int>(detail::ControlError::unsupported), "binary messages are not understood");
      return;
    case Opcode::close: close_received_ = true; return;
    default:  // ping is answered by wslay; a pong proves liveness, already noted
      return;
  }
}

void Session::leave(std::size_t k) {
  const auto t = subs_[k].topic;
  const std::size_t index = subs_[k].index;
  auto& group = t->groups[shard_.index()];
  if (group.flagged[index]) {
    BackpressureCounters counters;
    pull(*t, group, index, counters);
    shard_.add_counters(counters);
  }
  // Swap-remove: the member that took our place learns its new index.
  if (detail::Member* moved = detail::HubMembers::unsubscribe(hub_, t, shard_.index(), index, this, envelope_))
    static_cast<Session*>(moved)->set_group_index(t.get(), index);
  subs_.erase(subs_.begin() + static_cast<std::ptrdiff_t>(k));
  owner_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
}

void Session::unsubscribe_all() {
  while (!subs_.empty()) leave(subs_.size() - 1);
  subs_.shrink_to_fit();
}

// ---------------------------------------------------------------- timers and the end

void Session::tick(std::chrono::steady_clock::time_point now) {
  using std::chrono::duration_cast;
  switch (state_) {
    case State::handshake:
      if (now - last_read_ > owner_.server.options().handshake_timeout) {
        detail::ShardCounters::add(owner_.rejected, 1);
        finish();
      }
      return;
    case State::open:
      if (custom_ && custom_->auth && !auth_tick(now)) return;  // auth deadline, token expiry
      if (waiting_writable_ && options_.write_timeout.count() > 0 &&
          now - write_blocked_since_ > options_.write_timeout) {
        detail::ShardCounters::add(shard_.counters.write_timeouts, 1);
        finish();
        return;
      }
      if (options_.idle_timeout.count() > 0 && now - last_read_ > options_.idle_timeout) {
        close(CloseCode::going_away, "idle timeout");
        return;
      }
      if (options_.ping_interval.count() > 0 && !ping_outstanding_ && now - last_read_ > options_.ping_interval) {
        ping_outstanding_ = true;
        queue_.push_control(Frame::make(Opcode::ping, {}));
        schedule_flush();
      }
      // Free the queue's storage only after a quiet spell: a session that receives a message every
      // few ticks would otherwise allocate it again for every message.
      if (delivered_since_tick_)
        quiet_ticks_ = 0;
      else if (quiet_ticks_ < 255)
        ++quiet_ticks_;
      delivered_since_tick_ = false;
      if (quiet_ticks_ >= k_quiet_ticks_before_shrink && !waiting_writable_) queue_.shrink_if_empty();
      return;
    case State::closing:
      if (now - closing_since_ > options_.close_timeout) finish();
      return;
    case State::closed: return;
  }
}

void Session::finish() {
  if (state_ == State::closed) return;
  const bool was_ws = state_ != State::handshake;
  state_ = State::closed;
  unsubscribe_all();
  if (dirty_) shard_.forget(this);
  dirty_ = false;
  queue_.clear();
  ws_.reset();
  handshake_.reset();
  close_transport();
  owner_.remove(this);
  if (was_ws && owner_.server.callbacks().on_close) owner_.server.callbacks().on_close(*this);
  // Handlers may still be queued for this session; the last reference goes with them.
  asio::post(shard_.context(), [keep = std::move(self_)] {});
}

}  // namespace fanout

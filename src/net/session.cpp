#include "fanout/session.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <asio/post.hpp>
#include <atomic>
#include <cstring>

#include "fanout/detail/connection_limits.hpp"
#include "fanout/detail/control_protocol.hpp"
#include "fanout/detail/frame_reader.hpp"
#include "fanout/detail/gateway_hooks.hpp"
#include "fanout/detail/handshake_reader.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/http.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_app.hpp"
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
      options_(owner.session_options),
      last_read_(std::chrono::steady_clock::now()),
      state_since_(last_read_),
      id_(next_session_id.fetch_add(1, std::memory_order_relaxed)),
      remote_(std::move(remote)) {}

Session::~Session() = default;

void Session::begin_admission() {
  const auto& a = *owner_.admission;
  if (!owner_.networks().trusted_proxies.contains(remote_.address()))
    admit(true);
  else if (a.proxy_protocol)
    proxy_pending_ = true;  // its client is in the PROXY header
  else
    admit_at_head_ = true;  // ... or in X-Forwarded-For
}

void Session::admit(bool client_known) {
  auto& a = *owner_.admission;
  if (refusal_ != 0) return;
  if (a.connections.load(std::memory_order_relaxed) > a.max_connections.load(std::memory_order_relaxed)) {
    refusal_ = static_cast<std::uint8_t>(detail::Refusal::total);
    return;
  }
  if (!client_known || owner_.networks().exempt.contains(remote_.address())) return;
  switch (a.per_ip.acquire(detail::ip_key(remote_.address()), detail::now_ms())) {
    case detail::IpLimiter::Verdict::ok: ip_counted_ = true; return;
    case detail::IpLimiter::Verdict::too_many_connections:
      refusal_ = static_cast<std::uint8_t>(detail::Refusal::per_ip);
      return;
    case detail::IpLimiter::Verdict::too_many_handshakes:
      refusal_ = static_cast<std::uint8_t>(detail::Refusal::rate);
      return;
  }
}

std::size_t Session::shard() const noexcept { return owner_.shard.index(); }

detail::Group& Session::group_of(const Subscription& sub) const noexcept {
  return detail::HubMembers::group_of(*sub.topic, owner_.shard.index(), sub.interval_ms);
}

void Session::set_group_index(const detail::Topic* t, std::size_t i) noexcept {
  for (auto& s : subs_)
    if (s.topic.get() == t) {
      s.index = static_cast<std::uint32_t>(i);
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
  // Drop notices learn which topics the policy drops from (only for this push: counters may be shared).
  DropObserver* const observer = counters.observer;
  if (custom_ && custom_->drops && !custom_->drops->empty()) counters.observer = custom_->drops.get();
  struct Restore {
    BackpressureCounters& c;
    DropObserver* o;
    ~Restore() { c.observer = o; }
  } restore{counters, observer};
  // Compressed once for every client that negotiated it (Frame::deflated); RSV1 clear when not worth it.
  // Delta forms stay as they are: the write picks their delta or full message (session_delta.hpp).
  if (deflate_ && !frame->delta_form())
    if (const Frame* d = frame->deflated(options_.deflate_threshold)) frame = FrameRef::share(d);
  const OverflowContext context{.topic = topic.name,
                                .topic_id = topic.id,
                                .key_hash = frame->key_hash(),
                                .session = this,
                                .limits = options_.queue,
                                .counters = counters};
  const std::uint64_t budget_closes = counters.budget_disconnected;
  switch (queue_.push(std::move(frame), context, policy(), owner_.budget.cap_frames())) {
    case OutboundQueue::Result::queued: return true;
    case OutboundQueue::Result::dropped: return false;
    case OutboundQueue::Result::disconnect:
      if (counters.budget_disconnected != budget_closes)
        close_overloaded();  // the server-wide budget's cap, not the client's own limit
      else
        close(CloseCode::policy_violation, "slow consumer");
      return false;
  }
  return false;
}

void Session::pull(detail::Topic& topic, detail::Group& group, std::size_t i, BackpressureCounters& counters) {
  const auto frames = group.after(group.cursor[i]);
  if (!frames.empty()) {
    group.cursor[i] = frames.back().frame->seq();
    const bool delta = frames.front().delta_form && custom_ && custom_->delta && custom_->delta->has_topic(topic.id);
    for (const auto& p : frames)
      enqueue(delta && p.delta_form ? p.delta_form : envelope_ && p.envelope ? p.envelope : p.frame, topic, counters);
    detail::ShardCounters::add(owner_.shard.counters.deliveries, frames.size());
  }
  if (group.flagged[i]) {
    --pulls_due_;
    group.unflag(i);  // after the loop above: it may empty the log
  }
}

void Session::pull_due() {
  if (pulls_due_ != 0) {
    BackpressureCounters counters;
    for (const auto& sub : subs_) {
      auto& group = group_of(sub);
      if (group.flagged[sub.index]) Session::pull(*sub.topic, group, sub.index, counters);  // not virtual
    }
    owner_.shard.add_counters(counters);
  }
  if (custom_ && custom_->drops && !custom_->drops->empty()) send_drop_notices(std::chrono::steady_clock::now());
  // The start of every flush: what the write takes is shown as deltas where the client has the base.
  if (custom_ && custom_->delta && !custom_->delta->empty()) custom_->delta->choose(queue_, options_.max_write_bytes);
}

void Session::send_drop_notices(std::chrono::steady_clock::time_point now) {
  if (state_ != State::open) return;
  custom_->drops->flush(now, options_.drop_notice_interval, [this](std::uint64_t topic_id, std::uint64_t count) {
    for (const auto& sub : subs_) {
      if (sub.topic->id != topic_id) continue;
      // A control reply: never dropped by the policy; past the control reserve it waits for a later try.
      const auto text =
          fmt::format(R"({{"event":"dropped","arg":{},"count":{}}})", detail::json_string(sub.topic->name), count);
      if (!queue_.push_reply(Frame::make(Opcode::text, text), options_.queue)) return false;
      detail::ShardCounters::add(owner_.drop_notices, 1);
      schedule_flush();
      return true;
    }
    return true;  // no longer subscribed: nothing to tell
  });
}

void Session::schedule_flush() {
  if (dirty_ || waiting_writable_ || state_ == State::closed) return;
  dirty_ = true;
  owner_.shard.mark_dirty(this);
}

bool Session::send(std::string_view payload, Opcode op) {
  if (state_ != State::open) return false;
  return send_frame(Frame::make(op, payload));
}

bool Session::send_frame(FrameRef frame) {
  if (state_ != State::open) return false;
  if (!queue_.push_reply(std::move(frame), options_.queue)) {
    // Replies beyond the reserve: the client asks (or is sent) faster than it reads.
    detail::ShardCounters::add(owner_.reply_overflows, 1);
    close(CloseCode::policy_violation, "not reading replies");
    stop_reading();
    return false;
  }
  schedule_flush();
  return true;
}

void Session::close(CloseCode code, std::string_view reason) {
  if (state_ != State::open) return;
  // What was published before the close goes out before the close frame, as if it had been queued.
  // A client closed for being behind (1008) or under overload (1013) gets its close frame ahead of
  // what it has not read.
  const bool behind = code == CloseCode::policy_violation || code == CloseCode::try_again_later;
  if (!behind) pull_due();
  if (state_ != State::open) return;  // the pull met a full queue and the policy disconnected
  state_ = State::closing;
  state_since_ = std::chrono::steady_clock::now();
  if (behind) {
    // The client is not reading: what is queued would hold the close frame back for good.
    queue_.clear_unsent();
  }
  queue_.push_control(Frame::make_close(static_cast<std::uint16_t>(code), reason));
  close_after_flush_ = true;
  schedule_flush();
}

void Session::take_written(std::size_t n) {
  if (custom_ && custom_->delta && !custom_->delta->empty()) {
    const auto before = custom_->delta->deltas_written;
    custom_->delta->commit(queue_, n);
    if (custom_->delta->deltas_written != before)
      detail::ShardCounters::add(owner_.deltas_written, custom_->delta->deltas_written - before);
  }
  queue_.consume(n);
}

void Session::on_written(std::size_t n) {
  take_written(n);
  if (custom_ && custom_->delta && !custom_->delta->empty()) custom_->delta->choose(queue_, options_.max_write_bytes);
  // Progress: the client took the queue below the mark, so the write_timeout clock starts over.
  if (queue_.bytes() <= options_.read_pause_bytes) behind_since_ = {};
  if (read_paused_) update_reading();
  if (queue_.empty() && close_after_flush_) {
    if (state_ == State::handshake || close_received_) {
      finish();
    } else {
      // Our close frame is out; the peer's reply (or close_timeout from now) ends the session.
      if (state_ == State::closing) state_since_ = std::chrono::steady_clock::now();
      shutdown_send();
    }
  }
}

// ---------------------------------------------------------------- inbound

bool Session::on_bytes(std::span<const std::byte> data) {
  last_read_ = std::chrono::steady_clock::now();
  ping_outstanding_ = false;
  if (state_ == State::handshake) return on_handshake_bytes(data);
  if (state_ == State::open || (state_ == State::closing && !close_received_)) {
    if (!on_ws_bytes(data)) return false;
    update_reading();
  }
  return state_ != State::closed;
}

void Session::update_reading() {
  if (state_ == State::closed) return;
  const bool pause = waiting_writable_ && queue_.bytes() >= options_.read_pause_bytes;
  if (pause && !read_paused_) {
    read_paused_ = true;
    detail::ShardCounters::add(owner_.read_pauses, 1);
    set_reading(false);
  } else if (read_paused_ && state_ == State::open && queue_.bytes() <= options_.read_pause_bytes / 2) {
    read_paused_ = false;
    last_read_ = std::chrono::steady_clock::now();  // the pause was ours: idle time starts now
    set_reading(true);
  }
}

bool Session::spend_control(std::size_t cost) {
  if (control_ops_.take(static_cast<double>(cost), options_.control_ops_per_second, options_.control_ops_burst,
                        detail::now_ms()))
    return true;
  detail::ShardCounters::add(owner_.rate_limited, 1);
  close(CloseCode::policy_violation, "too many requests");
  stop_reading();
  return false;
}

void Session::stop_reading() {
  // An abuser's close: what it sends next cannot matter, and reading it would only cost CPU until
  // close_timeout; its sends back up in TCP instead.
  if (read_paused_ || state_ == State::closed) return;
  read_paused_ = true;
  set_reading(false);
}

void Session::on_read_end() {
  // The peer is gone (or half-closed after our close frame): nothing more can be delivered.
  finish();
}

bool Session::on_ws_bytes(std::span<const std::byte> data) {
  // The reader (and wslay's input buffer) lives only while a frame or message is half-received.
  if (!ws_)
    ws_ = std::make_unique<detail::FrameReader>(options_.max_message_bytes, detail::FrameReader::Role::server,
                                                bool{deflate_});
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
  if (const std::size_t pings = ws_->take_pings();
      pings > 0 && state_ == State::open &&
      !pings_.take(static_cast<double>(pings), options_.pings_per_second, options_.pings_burst, detail::now_ms())) {
    detail::ShardCounters::add(owner_.rate_limited, 1);
    ws_.reset();
    close_received_ = true;  // reading is over: nothing the client sends now can matter
    close(CloseCode::policy_violation, "too many pings");
    stop_reading();
    return state_ != State::closed;
  }
  if (!out.empty()) {
    // Pongs count against the queue like every reply; the close frame (wslay's last word) must go.
    const bool closing = ws_->finished();
    auto frame = Frame::make_raw(std::as_bytes(std::span(out)));
    out.clear();
    if (closing) {
      queue_.push_control(std::move(frame));
    } else if (!queue_.push_reply(std::move(frame), options_.queue)) {
      detail::ShardCounters::add(owner_.reply_overflows, 1);
      ws_.reset();
      close_received_ = true;
      fail(CloseCode::policy_violation, "not reading replies");
      stop_reading();
      return state_ != State::closed;
    }
    schedule_flush();
  }
  for (auto& m : ws_->take_messages()) on_message(m.op, m.payload);
  if (state_ == State::closed) return false;
  if (!ws_) return true;  // on_message failed the connection
  if (ws_->close_received()) close_received_ = true;
  if (ws_->finished()) {
    // wslay failed the connection (its close frame is queued) or answered the client's close.
    if (state_ == State::open) {
      state_ = State::closing;
      state_since_ = std::chrono::steady_clock::now();
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
      if (state_ != State::open) return;
      if (!owner_.server.callbacks().on_message) {
        on_control(payload);
        return;
      }
      // A control op (docs/protocol.md) is the protocol's; anything else is the application's.
      if (auto parsed = detail::parse_control(payload); parsed.control)
        on_control(parsed);
      else
        on_app_message(payload, op);
      return;
    case Opcode::binary:
      if (state_ != State::open) return;
      if (owner_.server.callbacks().on_message)
        on_app_message(payload, op);
      else
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
  const std::uint32_t interval_ms = subs_[k].interval_ms;
  if (custom_ && custom_->patterns) forget_pattern_topic(t.get());  // no pattern lists it any more
  auto& group = group_of(subs_[k]);
  if (group.flagged[index]) {
    BackpressureCounters counters;
    pull(*t, group, index, counters);
    owner_.shard.add_counters(counters);
  }
  // Swap-remove: the member that took our place learns its new index.
  if (detail::Member* moved = detail::HubMembers::unsubscribe(owner_.server.hub(), t, owner_.shard.index(), index, this,
                                                              envelope_, interval_ms))
    static_cast<Session*>(moved)->set_group_index(t.get(), index);
  if (custom_ && custom_->drops) custom_->drops->remove_topic(t->id);
  if (custom_ && custom_->delta && custom_->delta->has_topic(t->id)) {
    custom_->delta->remove_topic(t->id);
    detail::HubMembers::left_delta(*t);
  }
  subs_.erase(subs_.begin() + static_cast<std::ptrdiff_t>(k));
  owner_.subscriptions.fetch_sub(1, std::memory_order_relaxed);
  if (owner_.gateway) owner_.gateway->left(*this, t->name);
}

void Session::unsubscribe_all() {
  drop_patterns();
  while (!subs_.empty()) leave(subs_.size() - 1);
  subs_.shrink_to_fit();
}

// ---------------------------------------------------------------- timers and the end

bool Session::check_deadlines(std::chrono::steady_clock::time_point now) {
  switch (state_) {
    case State::handshake:
      // A deadline for the whole request head from accept (or the previous keep-alive answer), not
      // from the last byte: a byte every few seconds must not hold a connection (slowloris).
      if (now - state_since_ > owner_.options().handshake_timeout) {
        if (connect_pending_) {
          // on_connect did not decide in time: the client hears it, and a late decision is ignored.
          connect_pending_ = false;
          std::string().swap(app_state().held);
          answer_http(504, "Gateway Timeout", {}, "the application did not decide in time\n");
          state_since_ = now;  // the answer's own deadline
          return true;
        }
        detail::ShardCounters::add(owner_.rejected, 1);
        detail::ShardCounters::add(owner_.head_timeouts, 1);
        finish();
        return true;
      }
      return false;
    case State::open:
      if (custom_ && custom_->auth && !auth_tick(now)) return true;  // auth deadline, token expiry
      if (custom_ && custom_->app && !app_tick(now)) return true;    // rpc deadlines
      if (!ever_subscribed_ && options_.subscribe_timeout.count() > 0 &&
          now - state_since_ > options_.subscribe_timeout) {
        detail::ShardCounters::add(owner_.subscribe_timeouts, 1);
        close(CloseCode::policy_violation, "no subscription");
        return true;
      }
      return false;
    case State::closing:
      // Our close frame still waits for room in the socket: a stalled client may read again (then
      // it gets the frame after what the kernel holds), so it gets close_write_timeout for that.
      if (now - state_since_ > (close_after_flush_ && !queue_.empty() && !close_received_
                                    ? std::max(options_.close_write_timeout, options_.close_timeout)
                                    : options_.close_timeout)) {
        finish();
        return true;
      }
      return false;
    case State::closed: return true;
  }
  return false;
}

void Session::tick(std::chrono::steady_clock::time_point now) {
  if (check_deadlines(now) || state_ != State::open) return;
  if (custom_ && custom_->drops && !custom_->drops->empty()) send_drop_notices(now);
  // Slow: the queue has not drained below read_pause_bytes for write_timeout since the socket
  // blocked. Any byte read does not count: a client taking a trickle while much more queues is slow.
  if (behind_since_ != std::chrono::steady_clock::time_point{} && options_.write_timeout.count() > 0 &&
      now - behind_since_ > options_.write_timeout) {
    detail::ShardCounters::add(owner_.shard.counters.write_timeouts, 1);
    // A reset, not a FIN: the kernel would otherwise keep trickling its send buffer (megabytes)
    // to a client that already proved it does not read.
    abort_close_ = true;
    finish();
    return;
  }
  if (!read_paused_) {  // while paused the client's silence is ours; write_timeout watches it
    if (options_.idle_timeout.count() > 0 && now - last_read_ > options_.idle_timeout) {
      close(CloseCode::going_away, "idle timeout");
      return;
    }
    if (options_.ping_interval.count() > 0 && !ping_outstanding_ && now - last_read_ > options_.ping_interval) {
      ping_outstanding_ = true;
      queue_.push_control(Frame::make(Opcode::ping, {}));  // one at a time: bounded
      schedule_flush();
    }
  }
  // Free the queue's storage only after a quiet spell: a session that receives a message every
  // few ticks would otherwise allocate it again for every message.
  if (delivered_since_tick_)
    quiet_ticks_ = 0;
  else if (quiet_ticks_ < 255)
    ++quiet_ticks_;
  delivered_since_tick_ = false;
  if (quiet_ticks_ >= k_quiet_ticks_before_shrink && !waiting_writable_) queue_.shrink_if_empty();
}

void Session::finish() {
  if (state_ == State::closed) return;
  const bool was_ws = state_ != State::handshake;
  state_ = State::closed;
  if (ip_counted_) {
    ip_counted_ = false;
    owner_.admission->per_ip.release(detail::ip_key(remote_.address()), detail::now_ms());
  }
  unsubscribe_all();
  if (dirty_) owner_.shard.forget(this);
  dirty_ = false;
  queue_.clear();
  ws_.reset();
  handshake_.reset();
  close_transport();
  owner_.remove(this);
  if (was_ws && owner_.gateway) owner_.gateway->closed(*this);
  if (was_ws && owner_.server.callbacks().on_close) owner_.server.callbacks().on_close(*this);
  // Handlers may still be queued for this session; the last reference goes with them.
  asio::post(owner_.shard.context(), [keep = std::move(self_)] {});
}

}  // namespace fanout

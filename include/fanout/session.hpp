// fanout/session.hpp — one downstream WebSocket connection.
//
// A session reads the HTTP upgrade, then client frames through wslay (masking, fragmentation,
// control-frame rules, close codes; UTF-8 of text messages is checked here), answers the JSON
// control protocol (subscribe / unsubscribe / ping), and writes queued frames with one gather-write
// whenever the socket can take them. Its outbound queue applies the backpressure policy.
//
// Thread safety: a session lives on one shard; every member function must be called on that shard's
// thread (from a Server callback, or through asio::post to context()).
#pragma once

#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "fanout/export.hpp"
#include "fanout/detail/drop_notices.hpp"
#include "fanout/detail/member.hpp"
#include "fanout/detail/session_delta.hpp"
#include "fanout/detail/token_bucket.hpp"
#include "fanout/error.hpp"
#include "fanout/frame.hpp"
#include "fanout/hub.hpp"
#include "fanout/identity.hpp"
#include "fanout/outbound_queue.hpp"
#include "fanout/policy.hpp"
#include "fanout/rpc.hpp"
#include "fanout/session_state.hpp"

namespace fanout {

namespace detail {
class Shard;
struct Topic;
struct Group;
class ServerShard;
struct Recovery;
struct Replay;
struct SessionAuth;
struct SessionApp;
struct ControlRequest;
struct ControlParse;
struct Requester;
struct GatewayAccess;
struct PatternSubscription;
struct SessionPatterns;
enum class ControlError : int;
class HandshakeReader;
class FrameReader;
}  // namespace detail
class HttpRequest;
struct ConnectRequest;
struct ConnectDecision;

// The engine core sees a session as a detail::Member (the walk's fields and hooks), never this class.
class FANOUT_API Session : public std::enable_shared_from_this<Session>, protected detail::Member {
 public:
  /// Per-connection limits and timers; every one has a safe default.
  struct Options {
    OutboundQueue::Limits queue{};  // 1 MiB, 16384 frames
    std::shared_ptr<BackpressurePolicy> policy = drop_oldest();
    std::size_t max_message_bytes = 64 * 1024;                           // inbound; larger closes with 1009
    std::size_t max_subscriptions = 256;                                 // per connection
    std::chrono::milliseconds ping_interval = std::chrono::seconds(30);  // ping when the client is quiet; 0: off
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(75);   // close when nothing arrives; 0: off
    std::chrono::milliseconds write_timeout = std::chrono::seconds(30);  // a write blocked this long is a slow consumer
    std::chrono::milliseconds close_timeout = std::chrono::seconds(2);   // wait for the peer's close reply
    // A close frame stuck behind data a stalled client does not read (1008, 1013) waits this long for
    // the client to read again, then the connection ends without it (docs/protocol.md, close codes).
    std::chrono::milliseconds close_write_timeout = std::chrono::seconds(10);
    std::size_t max_write_bytes = 256 * 1024;  // per gather-write

    // ---- what one client can make the server hold or do (docs/security.md, "Bounded per client")
    // A session whose socket is blocked stops reading once this much is queued (TCP backpressure to
    // the client) and reads again when it drained to half. The queue must also drain below it within
    // write_timeout of the socket first blocking, or the client is slow (progress, not any byte).
    std::size_t read_pause_bytes = 64 * 1024;
    double control_ops_per_second = 50;  // topics in subscribe/unsubscribe, {"op":"ping"}s; 0: no limit
    double control_ops_burst = 600;      // past the bucket the session is closed with 1008
    double pings_per_second = 5;         // WebSocket pings from the client; 0: no limit
    double pings_burst = 20;             // past the bucket the session is closed with 1008
    // A WebSocket with no subscription this long after the upgrade is closed with 1008; 0: off.
    std::chrono::milliseconds subscribe_timeout = std::chrono::seconds(10);
    // Messages to the application (Server::Callbacks::on_message, docs/protocol.md): past the bucket
    // the session is closed with 1008. rpcs count as control ops, and are bounded by the two below.
    double messages_per_second = 100;  // 0: no limit
    double messages_burst = 200;
    std::size_t max_pending_rpcs = 16;  // rpcs waiting for the application's answer; past it: error 4429
    std::chrono::milliseconds rpc_timeout = std::chrono::seconds(10);  // then error 4504; a late answer is dropped
    // Throttled subscriptions ({"op":"subscribe",...,"interval_ms":N} or ?interval_ms=N; docs/protocol.md):
    // at most one update per key per interval, newest wins. An interval outside these gets error 4422;
    // max_interval 0 refuses throttling. Distinct intervals per topic: Hub::Options::max_intervals_per_topic.
    std::chrono::milliseconds min_interval = std::chrono::milliseconds(50);
    std::chrono::milliseconds max_interval = std::chrono::seconds(60);
    // Wildcard subscriptions ("trades:*", topic_pattern.hpp; docs/protocol.md, "Patterns"). Each topic a
    // pattern brings is a subscription like any other: max_subscriptions bounds them all.
    std::size_t max_patterns = 16;         // patterns per connection; 0: patterns are refused (4007)
    std::size_t max_pattern_topics = 256;  // topics one pattern subscription brings; later ones are not joined
    // "delta":"fossil" subscriptions (docs/protocol.md, "Deltas"): (topic, key) pairs whose last written
    // message a session remembers; past it, messages of new keys go out in full.
    std::size_t max_delta_keys = 4096;
    // "drop_notices":true subscriptions: at most one {"event":"dropped"} per topic per interval, each
    // counting every frame dropped since the last (docs/protocol.md, "Drop notices").
    std::chrono::milliseconds drop_notice_interval = std::chrono::seconds(1);

    // ---- permessage-deflate (RFC 7692; docs/protocol.md, "Compression"). Clients that offer it get
    // topic messages compressed once per message for all of them (no context takeover); the inflated
    // size of a compressed client message is bounded by max_message_bytes (1009 past it).
    bool permessage_deflate = true;       // negotiate it with clients that offer it
    std::size_t deflate_threshold = 256;  // payloads smaller than this go uncompressed (RSV1 clear)
  };

  using State = SessionState;  // handshake, open, closing, closed (session_state.hpp)

  virtual ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::uint64_t id() const noexcept { return id_; }
  State state() const noexcept { return state_; }
  std::size_t shard() const noexcept;
  const asio::ip::tcp::endpoint& remote() const noexcept { return remote_; }
  std::size_t queued_bytes() const noexcept { return queue_.bytes(); }
  /// True while the session does not read because its client does not read (read_pause_bytes).
  bool reading_paused() const noexcept { return read_paused_; }
  std::size_t subscription_count() const noexcept { return subs_.size(); }

  /// Joins a topic on the application's authority (live messages only): unlike a client's own
  /// subscribe, a topic that does not exist is created (as a publisher's would be). Returns false
  /// (with no effect) when refused.
  bool subscribe(std::string_view topic);
  /// True when the client negotiated permessage-deflate (Options::permessage_deflate).
  bool deflate() const noexcept { return deflate_; }
  /// True when this client gets envelopes ({"topic":..,"seq":..,"data":..}) instead of verbatim messages.
  bool envelope() const noexcept { return envelope_; }
  bool unsubscribe(std::string_view topic);
  /// The policy that decides when this client's queue is full: Options::policy unless set_policy chose
  /// another. Typically called from Server::Callbacks::on_open, before the first overflow; a null
  /// pointer goes back to Options::policy.
  void set_policy(std::shared_ptr<BackpressurePolicy> policy);
  BackpressurePolicy& policy() const noexcept {
    return custom_ && custom_->policy ? *custom_->policy : *options_.policy;
  }
  /// The application's data for this connection (e.g. the user it authenticated in on_open); empty
  /// until set. Policies see it through OverflowContext::session.
  std::any& user_data();
  const std::any& user_data() const noexcept;
  /// Queues a message for this client only (text by default), outside the backpressure policy but
  /// within the queue's control reserve (OutboundQueue::Limits): past it the client is closed with
  /// 1008, as it does not read what it is sent. False when the message was not queued.
  bool send(std::string_view payload, Opcode op = Opcode::text);
  /// Starts the closing handshake after what is queued: close frame, then the socket.
  void close(CloseCode code, std::string_view reason = {});

  /// Who the client proved to be (Server::Options::auth, auth.hpp): null while anonymous.
  const Identity* identity() const noexcept;
  /// The identity's `sub`; empty while anonymous.
  std::string_view user_id() const noexcept;
  /// Sets the identity when the application authenticated the client itself (e.g. in on_open, from a
  /// cookie or a connect proxy). Its `expires`, when set, ends the connection as a token's `exp` would.
  void set_identity(Identity identity);

 protected:
  Session(detail::ServerShard& owner, asio::ip::tcp::endpoint remote);

  // Transport hooks: plain and TLS differ only here.
  /// Writes what is queued (called once per loop turn by the shard).
  void flush() override = 0;
  virtual void close_transport() = 0;
  virtual void shutdown_send() = 0;
  /// Stops or resumes reading (the descriptor's input interest); the session decides when.
  virtual void set_reading(bool on) = 0;

  /// Bytes that arrived (HTTP head or WebSocket frames). Returns false when the session ended.
  bool on_bytes(std::span<const std::byte> data);
  /// The peer closed or the read failed.
  void on_read_end();
  /// After a write: what's left of the queue, and what to do when it is empty.
  void on_written(std::size_t n);
  /// Removes `n` written bytes from the queue (on_written does; a transport that takes bytes out of
  /// the queue before they are written calls it itself, then on_written(0)).
  void take_written(std::size_t n);
  void schedule_flush();
  /// Pulls from every group that flagged this session: the start of every flush.
  void pull_due();
  void finish();  // ends the session: leaves topics, closes the socket, unregisters
  /// A write found the socket full: starts the write_timeout clock unless it already runs.
  void note_blocked() noexcept {
    if (behind_since_ == std::chrono::steady_clock::time_point{}) behind_since_ = std::chrono::steady_clock::now();
  }

  // dirty_, waiting_writable_, state_ and pulls_due_ are detail::Member's: the publish walk reads them.
  // The small flags sit together right behind Member's fields: every byte counts per idle connection.
  bool envelope_ = false;           // the client gets envelopes
  bool close_after_flush_ = false;  // HTTP answers and sent close frames
  bool delivered_since_tick_ = false;
  bool ping_outstanding_ = false;
  bool close_received_ = false;
  std::uint8_t quiet_ticks_ = 0;  // ticks without deliveries; a long quiet spell frees the queue
  // Bounds per client (docs/security.md): kept beside the flags above.
  bool read_paused_ = false;          // input interest removed: the client does not read
  bool ever_subscribed_ = false;      // subscribe_timeout is met
  bool ip_counted_ : 1 = false;       // holds a slot of remote_'s address in the per-IP table
  bool admit_at_head_ : 1 = false;    // a trusted proxy's X-Forwarded-For names the client
  bool connect_pending_ : 1 = false;  // on_connect has not decided yet: the upgrade (and reading) waits
  bool abort_close_ = false;          // close_transport resets: what the kernel still buffers is dropped
  bool proxy_pending_ : 1 = false;    // a trusted proxy's PROXY header comes first (into Custom::proxy_header)
  bool deflate_ : 1 = false;          // permessage-deflate negotiated: compressed frames out, RSV1 in
  std::uint8_t refusal_ = 0;          // a connection limit refused this one (detail::Refusal): 503
  // Two flags above share a byte so that this fits before owner_ (Session under 256 bytes).
  std::uint32_t index_in_owner_ = 0;  // in ServerShard's session list
  // The shard and the hub are reached through owner_ (owner_.shard, owner_.server.hub()): two
  // references fewer per connection.
  detail::ServerShard& owner_;
  const Options& options_;
  OutboundQueue queue_;
  std::chrono::steady_clock::time_point last_read_;
  // Since the socket blocked with the queue not drained below read_pause_bytes ({}: it is not).
  std::chrono::steady_clock::time_point behind_since_;
  // Since the state began: accept (or the last keep-alive answer), upgrade, close. Every
  // per-session deadline is measured from it (check_deadlines).
  std::chrono::steady_clock::time_point state_since_;
  detail::TokenBucket control_ops_;     // Options::control_ops_per_second
  detail::TokenBucket pings_;           // Options::pings_per_second
  std::shared_ptr<Session> self_;       // keeps the session alive until finish()
  std::int64_t replayed_until_ns_ = 0;  // frames published before this were replayed: not latency samples

 private:
  friend class detail::ServerShard;
  friend struct RpcReply::Target;       // answers on the shard (rpc_reply.cpp)
  friend struct detail::GatewayAccess;  // a Gateway's sends, live deliveries and user binding (src/gateway)

  /// Queues a frame under the policy (the reference is the session's to keep or drop), and writes
  /// soon. Never closes synchronously.
  void deliver(FrameRef frame, const detail::Topic& topic, BackpressureCounters& counters);
  /// Queues the frames of `group`'s log past this member's cursor, and unflags it (member.hpp).
  void pull(detail::Topic& topic, detail::Group& group, std::size_t i, BackpressureCounters& counters) override;
  void set_group_index(const detail::Topic* t, std::size_t i) noexcept;
  struct Subscription {
    std::shared_ptr<detail::Topic> topic;
    std::uint32_t index;            // place in the member list of its group on this shard
    std::uint32_t interval_ms = 0;  // throttled ("interval_ms"): its group is that lane's (detail/lane.hpp)
    std::uint16_t patterns{0};      // wildcard subscriptions that brought it (session_patterns.cpp)
    bool direct{true};              // subscribed by name (or by the application)
  };
  /// The group `sub` is a member of on this shard.
  detail::Group& group_of(const Subscription& sub) const noexcept;
  /// What most sessions never need, so they pay one pointer: what the application set, and a PROXY
  /// protocol header while it is half-received.
  struct Custom {
    std::shared_ptr<BackpressurePolicy> policy;
    std::any user_data;
    std::unique_ptr<detail::SessionAuth> auth;    // with Server::Options::auth: identity and token expiry
    std::unique_ptr<detail::SessionApp> app;      // with the application's callbacks: on_connect, on_message, on_rpc
    std::unique_ptr<detail::SessionDelta> delta;  // with "delta":"fossil" subscriptions
    std::unique_ptr<detail::DropNotices> drops;   // with "drop_notices":true subscriptions
    // Wildcard subscriptions (session_patterns.cpp). Shared only so that the files creating Custom
    // need not see the type.
    std::shared_ptr<detail::SessionPatterns> patterns;
    std::string proxy_header;
  };

  // Identity and access control (session_auth.cpp).
  /// Origin and token checks on the upgrade request; false when refused (401/403 answered).
  bool admit(const HttpRequest& req);
  bool auth_pending() const noexcept;
  /// auth and refresh ops, and any op of a client that still owes its auth message; true when handled.
  bool on_auth_control(const detail::ControlRequest& req);
  /// The access rules for a client's subscribe; replies the error and returns false when denied.
  bool may_subscribe(std::string_view topic, std::string_view token);
  /// Auth deadline, expiry warning and expiry; false when the session is closing because of them.
  bool auth_tick(std::chrono::steady_clock::time_point now);
  detail::SessionAuth& auth_state();

  bool on_handshake_bytes(std::span<const std::byte> data);
  void answer_http(int status, std::string_view reason, std::string_view extra_headers, std::string_view body,
                   std::string_view content_type = "text/plain", bool head_only = false, bool keep_alive = false);
  void answer_plain_http(const HttpRequest& req);
  /// 101, then `app_topics` joined on the application's authority (on_connect's), the URL's
  /// ?subscribe=, then on_open.
  void accept_websocket(const HttpRequest& req, std::span<const std::string> app_topics = {});
  bool on_ws_bytes(std::span<const std::byte> data);
  /// The URL's options for its ?subscribe= topics, as JSON members to add to the subscribe op ("" or
  /// ',"interval_ms":N').
  static std::string url_subscribe_options(const HttpRequest& req);
  void on_message(Opcode op, std::string_view payload);
  void on_control(std::string_view text);
  /// A parsed control op (or, without on_message, anything that is not one: its error is answered).
  void on_control(detail::ControlParse& parsed);

  // The application's callbacks (Server::Callbacks): on_connect before the upgrade (session_connect.cpp),
  // on_message and on_rpc after it (session_app.cpp).
  detail::SessionApp& app_state();
  /// The upgrade request as on_connect sees it (connect_request.cpp).
  ConnectRequest connect_request(const HttpRequest& req) const;
  /// Hands the valid, admitted upgrade request to on_connect; reading waits for the decision.
  void begin_connect(const HttpRequest& req, std::span<const std::byte> after_head);
  /// on_connect's decision, back on the shard.
  void connect_decided(ConnectDecision decision);
  /// A text or binary message that is not a control op, for on_message.
  void on_app_message(std::string_view payload, Opcode op);
  void on_rpc(detail::ControlRequest& req);
  /// The RpcReply for rpc `seq` (rpc_reply.cpp, where its target is known).
  RpcReply make_rpc_reply(std::uint64_t seq, std::string id);
  /// An answer to rpc `seq` (rpc_reply.cpp); dropped when that rpc timed out or the session closed.
  void rpc_answered(std::uint64_t seq, std::string_view text);
  /// rpc deadlines; false when the session is closing because of them.
  bool app_tick(std::chrono::steady_clock::time_point now);
  void fail(CloseCode code, std::string_view reason);  // close after a protocol violation
  void reply_event(std::string_view json);
  void reply_error(int code, std::string_view msg);
  /// {"event":"error","op":"rpc","id":ID,"code":C,"msg":".."}; `id` JSON text, or empty when unknown.
  void reply_rpc_error(std::string_view id, int code, std::string_view msg);
  void tick(std::chrono::steady_clock::time_point now);
  /// The deadlines of the state (request head, first subscription, close reply); true when one
  /// ended the session or started its close. The one place such deadlines are checked.
  bool check_deadlines(std::chrono::steady_clock::time_point now);
  /// Pauses reading when the client does not read (read_pause_bytes); resumes when drained.
  void update_reading();
  /// At accept: admits the peer now, or waits for what a trusted proxy says (PROXY header, or
  /// X-Forwarded-For in the head).
  void begin_admission();
  /// Whether connection limits let this client in (remote_, when `client_known`; else only the
  /// total applies); a refusal is answered with 503 once its request head is read.
  void admit(bool client_known);
  /// Reads a PROXY protocol header from a trusted proxy; false while it is incomplete or bad.
  bool take_proxy_header(std::span<const std::byte>& data);
  /// Stops reading for good (an abuser's close): its sends back up in TCP until the session ends.
  void stop_reading();
  /// Spends `cost` control ops; false (and the session closing with 1008) past the rate.
  bool spend_control(std::size_t cost);
  void answer_refusal();
  /// Admits by a trusted proxy's X-Forwarded-For when due; true when the connection is refused (answered).
  bool admit_by_head(const HttpRequest& req);
  void unsubscribe_all();
  /// Queues the drop notices that are due (detail/drop_notices.hpp).
  void send_drop_notices(std::chrono::steady_clock::time_point now);
  /// subscribe() with recovery: `replay` receives what goes out before live frames. `requester`: the
  /// client asked (it may create the topic only as Hub::Options::client_topics allows); nullptr: the application.
  bool join(std::string_view topic, const detail::Recovery& recovery, detail::Replay& replay,
            const detail::Requester* requester);
  void reply_topic_error(detail::ControlError code, std::string_view topic, std::string_view msg);
  static detail::Requester requester_of(std::uint64_t id, const asio::ip::tcp::endpoint& remote) noexcept;
  /// Queues a frame under the policy; false when it was not queued. Never writes.
  bool enqueue(FrameRef frame, const detail::Topic& topic, BackpressureCounters& counters);
  /// Server-wide queue budget pressure (queue_budget.cpp): acts by the policy on a queue longer than
  /// `max_frames` (trim, or disconnect), and shrinks a ring much larger than that.
  void apply_budget(std::size_t max_frames, BackpressureCounters& counters);
  /// 1013 with {"reason":"overload","retry_after_ms":N}: the server's queue budget, not the client's own limit.
  void close_overloaded();
  /// Leaves subs_[k]'s topic (after pulling what was published before, as a queue would have had it).
  void leave(std::size_t k);
  bool group_index_known(std::string_view topic) const noexcept;
  /// Whether a subscribe's "interval_ms" is within the options (0: not throttled); replies 4422 when not.
  bool interval_allowed(std::uint64_t interval_ms);
  Subscription* find_subscription(std::string_view topic) noexcept;

  // Wildcard subscriptions (session_patterns.cpp, docs/protocol.md "Patterns").
  /// A client's subscribe to `pattern`: the existing topics it matches are joined (with `since`
  /// per topic), and topics created later as the hub announces them.
  void subscribe_pattern(const detail::ControlRequest& req, std::string_view pattern);
  /// Leaves the topics only `pattern` brought; false when not subscribed to it.
  bool unsubscribe_pattern(std::string_view pattern);
  /// The hub's notice: `topic` was created and `sub`'s pattern matches it (shard thread).
  void pattern_matched(const detail::PatternSubscription& sub, const std::shared_ptr<detail::Topic>& topic);
  /// Joins a topic a pattern matched; false when it left the hub meanwhile.
  bool join_matched(const std::shared_ptr<detail::Topic>& topic, const detail::Recovery& recovery,
                    detail::Replay& replay, bool drop_notices);
  /// `topic` leaves the lists of the patterns that brought it (it is being left).
  void forget_pattern_topic(const detail::Topic* topic) noexcept;
  /// Ends every wildcard subscription (the session closes).
  void drop_patterns();
  /// Denied by the pattern's limits: tells the client once per pattern subscription.
  void report_pattern_limit(std::string_view pattern, bool& told);
  /// {"op":"presence"} and a subscribe's "presence":true, answered by an attached Gateway.
  void answer_presence(std::string_view topic, std::string_view token);
  void watch_presence(std::string_view topic);
  /// send() of a frame made once for many sessions (a Gateway's sends).
  bool send_frame(FrameRef frame);
  /// A message to this member of `topic` outside the hub's sequence (Gateway::publish with an
  /// exclude list), under the policy like live frames; `envelope` is made once, when first needed.
  bool deliver_live(std::string_view topic, const FrameRef& verbatim, FrameRef& envelope);

  const std::uint64_t id_;
  asio::ip::tcp::endpoint remote_;
  std::uint32_t http_requests_ = 0;  // plain HTTP requests served on this connection (keep-alive)
  std::vector<Subscription> subs_;
  std::unique_ptr<detail::FrameReader> ws_;             // only while a frame or message is half-received
  std::unique_ptr<detail::HandshakeReader> handshake_;  // only during the handshake
  std::unique_ptr<Custom> custom_;
};

}  // namespace fanout

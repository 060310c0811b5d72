// Gateway (gateway.hpp): the registry of an attached server's connections, its user and topic
// indexes, and addressed sends.
//
// Two kinds of state. The indexes (client id -> shard, users, topics) sit behind one mutex so any
// thread may query them; it is held only for map work, never while a session is touched or another
// shard is waited for, so calls from shard threads (callbacks, HTTP handlers) cannot deadlock. Each
// shard also has a map session id -> Session*, touched only on that shard's thread: a send looks
// the session up there when it runs, so a connection that closed meanwhile is simply not found.
#include "fanout/gateway.hpp"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include <asio/post.hpp>
#include <fmt/format.h>

#include "fanout/detail/client_id.hpp"
#include "fanout/detail/gateway_hooks.hpp"
#include "fanout/detail/json.hpp"
#include "fanout/detail/runtime_access.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/session_auth.hpp"
#include "fanout/detail/topic_index.hpp"
#include "fanout/detail/user_index.hpp"
#include "fanout/hub.hpp"
#include "fanout/runtime.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

namespace fanout {
namespace detail {

/// What the gateway does to a session, on its shard thread (Session befriends this).
struct GatewayAccess {
  static bool send(Session& s, const FrameRef& f) { return s.send_frame(f); }
  static bool deliver_live(Session& s, std::string_view topic, const FrameRef& f, FrameRef& envelope) {
    return s.deliver_live(topic, f, envelope);
  }
  /// The identity's user becomes `user` ("" none), its other fields (claims, expiry) kept. Not through
  /// set_identity: that would also end a pending auth and re-arm the expiry timers.
  static void set_user(Session& s, std::string_view user) {
    if (s.user_id() == user) return;
    Identity id = s.identity() ? *s.identity() : Identity{};
    id.user = std::string(user);
    s.auth_state().identity = std::make_shared<const Identity>(std::move(id));
  }
};

/// The sessions of one shard by id; that shard's thread only. Shared with tasks posted to shards, so
/// a task that runs after the Gateway is gone finds nothing instead of freed memory.
struct GatewayShards {
  std::vector<std::unordered_map<std::uint64_t, Session*>> sessions;
  std::atomic<std::uint64_t> sends{0};

  Session* find(std::size_t shard, std::uint64_t id) const {
    const auto& m = sessions[shard];
    const auto it = m.find(id);
    return it == m.end() ? nullptr : it->second;
  }
};

struct GatewayState final : GatewayHooks {
  GatewayState(Runtime& rt, Hub& h, Gateway::Options o) : runtime(rt), hub(h), options(std::move(o)) {
    if (!valid_node_name(options.node))
      throw std::invalid_argument("fanout: Gateway node name must be [A-Za-z0-9_.]{1,32}: " + options.node);
    shards->sessions.resize(runtime.shard_count());
    users.set_observer(options.on_user_presence);
  }

  Runtime& runtime;
  Hub& hub;
  const Gateway::Options options;
  std::shared_ptr<GatewayShards> shards = std::make_shared<GatewayShards>();

  /// A registered connection; one hash-map entry with pointers into the indexes (per-connection
  /// memory: docs/benchmarks.md, "Gateway: memory per connection").
  struct Connection {
    std::uint32_t shard = 0;
    std::vector<const std::string*> topics;  // their names as `topics` stores them
  };

  mutable std::mutex mutex;
  std::unordered_map<std::uint64_t, Connection> connections;
  UserIndex users;
  TopicIndex topics;

  /// Session ids grouped by shard (a fan-out posts one task per shard, not per session).
  using ByShard = std::vector<std::vector<std::uint64_t>>;

  std::optional<std::uint64_t> parse(std::string_view client_id) const noexcept {
    return parse_client_id(options.node, client_id);
  }
  std::string format(std::uint64_t id) const { return format_client_id(options.node, id); }

  bool valid_user(std::string_view user) const noexcept {
    return !user.empty() && user.size() <= options.max_user_id_bytes &&
           simdjson::validate_utf8(user.data(), user.size());
  }

  /// The shard of a registered connection; lock held.
  std::optional<std::uint32_t> shard_locked(std::uint64_t id) const {
    const auto it = connections.find(id);
    return it == connections.end() ? std::nullopt : std::optional<std::uint32_t>(it->second.shard);
  }
  Connection* find_locked(std::uint64_t id) {
    const auto it = connections.find(id);
    return it == connections.end() ? nullptr : &it->second;
  }

  /// Runs `f` on the shard's thread: inline when called there (or when no thread runs the shard),
  /// else posted. Never with the lock held: `f` may reach the hooks below, which take it.
  void run_on(std::size_t shard, std::function<void()> f) { RuntimeAccess::loop(runtime, shard).submit(std::move(f)); }

  /// Queues `frame` to every session of `by_shard` still open when its shard gets to it.
  std::size_t send_frame(ByShard by_shard, const FrameRef& frame) {
    std::size_t n = 0;
    for (std::size_t k = 0; k < by_shard.size(); ++k) {
      if (by_shard[k].empty()) continue;
      n += by_shard[k].size();
      run_on(k, [sh = shards, k, ids = std::move(by_shard[k]), frame] {
        std::uint64_t sent = 0;
        for (const auto id : ids)
          if (Session* s = sh->find(k, id)) sent += GatewayAccess::send(*s, frame);
        sh->sends.fetch_add(sent, std::memory_order_relaxed);
      });
    }
    return n;
  }

  // ---- presence events

  /// An event per change, for the topic's watchers; gathered with the lock held.
  struct Event {
    FrameRef frame;
    ByShard to;
  };
  std::vector<Event> events_locked(const std::vector<PresenceChange>& changes) const {
    std::vector<Event> out;
    for (const auto& c : changes) {
      auto watchers = topics.watchers(c.topic);
      if (watchers.empty()) continue;
      Event e{
          Frame::make(Opcode::text, fmt::format(R"({{"event":"{}","arg":{},"user":{}}})", c.joined ? "join" : "leave",
                                                json_string(c.topic), json_string(c.user))),
          ByShard(runtime.shard_count())};
      for (const auto id : watchers)
        if (const auto k = shard_locked(id)) e.to[*k].push_back(id);
      out.push_back(std::move(e));
    }
    return out;
  }
  /// Posted even to this shard: an event comes after the replies of the request that caused it.
  void emit(std::vector<Event> events) {
    for (auto& e : events)
      for (std::size_t k = 0; k < e.to.size(); ++k)
        if (!e.to[k].empty())
          asio::post(runtime.context(k), [sh = shards, k, ids = std::move(e.to[k]), frame = e.frame] {
            for (const auto id : ids)
              if (Session* s = sh->find(k, id)) GatewayAccess::send(*s, frame);
          });
  }

  // ---- hooks, on the session's shard thread

  std::string client_id(std::uint64_t session_id) const override { return format(session_id); }

  bool may_open(const Session& s) const override {
    if (options.max_connections_per_user == 0 || !valid_user(s.user_id())) return true;
    const std::lock_guard lock(mutex);
    return users.connections(s.user_id()).size() < options.max_connections_per_user;
  }

  void opened(Session& s) override {
    shards->sessions[s.shard()][s.id()] = &s;
    const std::lock_guard lock(mutex);
    auto& c = connections[s.id()];
    c.shard = static_cast<std::uint32_t>(s.shard());
    // The identity's user is the connection's user (a token's sub, ConnectDecision::user_id).
    if (valid_user(s.user_id())) users.bind(s.id(), s.user_id(), options.max_connections_per_user);
  }

  void closed(Session& s) override {
    shards->sessions[s.shard()].erase(s.id());
    std::vector<Event> events;
    {
      const std::lock_guard lock(mutex);
      const auto it = connections.find(s.id());
      if (it == connections.end()) return;
      std::vector<PresenceChange> changes;
      const auto& c = it->second;
      // Normally none: finish() left every topic first (left() below did the work).
      const std::string user(users.user_of(s.id()));
      for (const std::string* t : c.topics) topics.leave(*t, s.id(), user, changes);
      users.unbind(s.id());
      connections.erase(it);
      events = events_locked(changes);
    }
    emit(std::move(events));
  }

  void joined(Session& s, std::string_view topic) override { membership(s, topic, true); }
  void left(Session& s, std::string_view topic) override { membership(s, topic, false); }

  void membership(Session& s, std::string_view topic, bool join) {
    std::vector<Event> events;
    {
      const std::lock_guard lock(mutex);
      Connection* c = find_locked(s.id());
      if (!c) return;
      std::vector<PresenceChange> changes;
      if (join) {
        if (const std::string* name = topics.join(topic, s.id(), users.user_of(s.id()), changes))
          c->topics.push_back(name);
      } else {
        // Off the connection's list first: the index frees the name with the topic's last member.
        const auto t =
            std::find_if(c->topics.begin(), c->topics.end(), [&](const std::string* n) { return *n == topic; });
        if (t != c->topics.end()) c->topics.erase(t);
        topics.leave(topic, s.id(), users.user_of(s.id()), changes);
      }
      events = events_locked(changes);
    }
    emit(std::move(events));
  }

  void identity_changed(Session& s) override {
    std::vector<Event> events;
    {
      const std::lock_guard lock(mutex);
      if (!connections.contains(s.id())) return;
      events = rebind_locked(s.id(), valid_user(s.user_id()) ? s.user_id() : std::string_view{});
    }
    emit(std::move(events));
  }

  /// Binds `id` to `user` ("": unbinds); false past max_connections_per_user (then unchanged).
  bool bind_locked(std::uint64_t id, std::string_view user, std::vector<Event>& events) {
    Connection* c = find_locked(id);
    if (!c) return false;
    const std::string from(users.user_of(id));  // a copy: the index drops its own
    if (from == user) return true;
    if (user.empty())
      users.unbind(id);
    else if (users.bind(id, user, options.max_connections_per_user) == UserIndex::Bind::too_many)
      return false;
    std::vector<PresenceChange> changes;
    topics.rebind(c->topics, from, user, changes);
    events = events_locked(changes);
    return true;
  }
  std::vector<Event> rebind_locked(std::uint64_t id, std::string_view user) {
    std::vector<Event> events;
    if (!bind_locked(id, user, events)) bind_locked(id, {}, events);  // the identity no longer names the old user
    return events;
  }

  bool watch(Session& s, std::string_view topic, std::string& error) override {
    const std::lock_guard lock(mutex);
    if (topics.watch(topic, s.id(), options.max_list)) return true;
    error = fmt::format("presence events: at most {} watchers per topic", options.max_list);
    return false;
  }

  std::string presence(std::string_view topic) const override {
    std::size_t count = 0;
    std::vector<std::pair<std::string, std::size_t>> list;
    {
      const std::lock_guard lock(mutex);
      count = topics.user_count(topic);
      list = topics.users(topic, options.max_list);
    }
    std::string out = fmt::format(R"({{"event":"presence","arg":{},"count":{},"users":[)", json_string(topic), count);
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i) out += ',';
      out += R"({"user":)";
      append_json_string(out, list[i].first);
      fmt::format_to(std::back_inserter(out), R"(,"connections":{}}})", list[i].second);
    }
    fmt::format_to(std::back_inserter(out), R"(],"truncated":{}}})", list.size() < count ? "true" : "false");
    return out;
  }
};

}  // namespace detail

using detail::GatewayAccess;

Gateway::Gateway(Runtime& runtime, Hub& hub) : Gateway(runtime, hub, Options{}) {}

Gateway::Gateway(Runtime& runtime, Hub& hub, Options options)
    : state_(std::make_unique<detail::GatewayState>(runtime, hub, std::move(options))) {}

Gateway::~Gateway() = default;

void Gateway::attach(Server& server) {
  if (&server.hub() != &state_->hub) throw std::invalid_argument("fanout: Gateway::attach: the server has another Hub");
  if (server.shards_.size() != state_->shards->sessions.size())
    throw std::invalid_argument("fanout: Gateway::attach: the server runs on another Runtime");
  for (auto& s : server.shards_) s->gateway = state_.get();
}

const Gateway::Options& Gateway::options() const noexcept { return state_->options; }

std::string Gateway::client_id(const Session& session) const { return state_->format(session.id()); }

// ---------------------------------------------------------------- users

bool Gateway::bind_user(std::string_view client_id, std::string_view user) {
  auto& st = *state_;
  const auto id = st.parse(client_id);
  if (!id || !st.valid_user(user)) return false;
  std::vector<detail::GatewayState::Event> events;
  std::uint32_t shard = 0;
  {
    const std::lock_guard lock(st.mutex);
    const auto k = st.shard_locked(*id);
    if (!k || !st.bind_locked(*id, user, events)) return false;
    shard = *k;
  }
  // The session's identity follows, so Session::user_id() and access rules agree with the index.
  st.run_on(shard, [sh = st.shards, shard, id = *id, u = std::string(user)] {
    if (Session* s = sh->find(shard, id)) GatewayAccess::set_user(*s, u);
  });
  st.emit(std::move(events));
  return true;
}

bool Gateway::unbind_user(std::string_view client_id) {
  auto& st = *state_;
  const auto id = st.parse(client_id);
  if (!id) return false;
  std::vector<detail::GatewayState::Event> events;
  std::uint32_t shard = 0;
  {
    const std::lock_guard lock(st.mutex);
    const auto k = st.shard_locked(*id);
    if (!k) return false;
    st.bind_locked(*id, {}, events);
    shard = *k;
  }
  st.run_on(shard, [sh = st.shards, shard, id = *id] {
    if (Session* s = sh->find(shard, id)) GatewayAccess::set_user(*s, {});
  });
  st.emit(std::move(events));
  return true;
}

bool Gateway::is_online(std::string_view user) const {
  const std::lock_guard lock(state_->mutex);
  return !state_->users.connections(user).empty();
}

std::vector<std::string> Gateway::clients_of_user(std::string_view user) const {
  std::vector<std::uint64_t> ids;
  {
    const std::lock_guard lock(state_->mutex);
    ids = state_->users.connections(user);
  }
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (const auto id : ids) out.push_back(state_->format(id));
  return out;
}

std::size_t Gateway::user_count() const {
  const std::lock_guard lock(state_->mutex);
  return state_->users.user_count();
}

std::size_t Gateway::connection_count() const {
  const std::lock_guard lock(state_->mutex);
  return state_->connections.size();
}

// ---------------------------------------------------------------- sends

std::size_t Gateway::send_to_client(std::string_view client_id, std::string_view payload, Opcode op) {
  auto& st = *state_;
  const auto id = st.parse(client_id);
  if (!id) return 0;
  detail::GatewayState::ByShard to(st.shards->sessions.size());
  {
    const std::lock_guard lock(st.mutex);
    const auto k = st.shard_locked(*id);
    if (!k) return 0;
    to[*k].push_back(*id);
  }
  return st.send_frame(std::move(to), Frame::make(op, payload));
}

std::size_t Gateway::send_to_user(std::string_view user, std::string_view payload, Opcode op) {
  auto& st = *state_;
  detail::GatewayState::ByShard to(st.shards->sessions.size());
  {
    const std::lock_guard lock(st.mutex);
    for (const auto id : st.users.connections(user))
      if (const auto k = st.shard_locked(id)) to[*k].push_back(id);
  }
  return st.send_frame(std::move(to), Frame::make(op, payload));
}

std::size_t Gateway::send_to_all(std::string_view payload, const std::vector<std::string>& exclude, Opcode op) {
  auto& st = *state_;
  auto excluded = std::make_shared<std::unordered_set<std::uint64_t>>();
  for (const auto& c : exclude)
    if (const auto id = st.parse(c)) excluded->insert(*id);
  std::size_t n = 0;
  {
    const std::lock_guard lock(st.mutex);
    n = st.connections.size();
    for (const auto id : *excluded) n -= st.connections.contains(id);
  }
  if (n == 0) return 0;
  // Each shard walks its own sessions: no list of every connection is built under the lock.
  const auto frame = Frame::make(op, payload);
  for (std::size_t k = 0; k < st.shards->sessions.size(); ++k)
    st.run_on(k, [sh = st.shards, k, excluded, frame] {
      std::uint64_t sent = 0;
      for (const auto& [id, s] : sh->sessions[k])
        if (!excluded->contains(id)) sent += GatewayAccess::send(*s, frame);
      sh->sends.fetch_add(sent, std::memory_order_relaxed);
    });
  return n;
}

std::size_t Gateway::publish(std::string_view topic, std::string_view payload, const std::vector<std::string>& exclude,
                             Opcode op) {
  auto& st = *state_;
  if (exclude.empty()) {
    const auto members = st.hub.subscriber_count(topic);
    return st.hub.publish(topic, payload, op).accepted() ? members : 0;
  }
  // With exclusions the hub's walk (one log per shard that every member pulls) cannot skip anyone:
  // the message goes live to the members this gateway tracks, under their policy, outside the
  // topic's history and seq (docs/gateway.md).
  std::unordered_set<std::uint64_t> excluded;
  for (const auto& c : exclude)
    if (const auto id = st.parse(c)) excluded.insert(*id);
  detail::GatewayState::ByShard to(st.shards->sessions.size());
  std::size_t n = 0;
  {
    const std::lock_guard lock(st.mutex);
    for (const auto id : st.topics.members(topic, st.topics.member_count(topic)))
      if (!excluded.contains(id))
        if (const auto k = st.shard_locked(id)) {
          to[*k].push_back(id);
          ++n;
        }
  }
  const auto frame = Frame::make(op, payload);
  for (std::size_t k = 0; k < to.size(); ++k) {
    if (to[k].empty()) continue;
    st.run_on(k, [sh = st.shards, k, ids = std::move(to[k]), frame, t = std::string(topic)] {
      FrameRef envelope;  // made once per shard, for the envelope clients among them
      std::uint64_t sent = 0;
      for (const auto id : ids)
        if (Session* s = sh->find(k, id)) sent += GatewayAccess::deliver_live(*s, t, frame, envelope);
      sh->sends.fetch_add(sent, std::memory_order_relaxed);
    });
  }
  return n;
}

// ---------------------------------------------------------------- topics as groups

bool Gateway::join(std::string_view client_id, std::string_view topic) {
  auto& st = *state_;
  const auto id = st.parse(client_id);
  if (!id || !st.hub.valid_topic(topic)) return false;
  std::uint32_t shard = 0;
  {
    const std::lock_guard lock(st.mutex);
    const auto k = st.shard_locked(*id);
    if (!k) return false;
    shard = *k;
  }
  st.run_on(shard, [sh = st.shards, shard, id = *id, t = std::string(topic)] {
    if (Session* s = sh->find(shard, id)) s->subscribe(t);
  });
  return true;
}

bool Gateway::leave(std::string_view client_id, std::string_view topic) {
  auto& st = *state_;
  const auto id = st.parse(client_id);
  if (!id) return false;
  std::uint32_t shard = 0;
  {
    const std::lock_guard lock(st.mutex);
    const auto* c = st.find_locked(*id);
    if (!c || std::none_of(c->topics.begin(), c->topics.end(), [&](const std::string* n) { return *n == topic; }))
      return false;
    shard = c->shard;
  }
  st.run_on(shard, [sh = st.shards, shard, id = *id, t = std::string(topic)] {
    if (Session* s = sh->find(shard, id)) s->unsubscribe(t);
  });
  return true;
}

std::size_t Gateway::topic_client_count(std::string_view topic) const { return state_->hub.subscriber_count(topic); }

std::vector<std::string> Gateway::topic_clients(std::string_view topic) const {
  std::vector<std::uint64_t> ids;
  {
    const std::lock_guard lock(state_->mutex);
    ids = state_->topics.members(topic, state_->options.max_list);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (const auto id : ids) out.push_back(state_->format(id));
  return out;
}

std::vector<Gateway::Member> Gateway::topic_users(std::string_view topic) const {
  std::vector<std::pair<std::string, std::size_t>> users;
  {
    const std::lock_guard lock(state_->mutex);
    users = state_->topics.users(topic, state_->options.max_list);
  }
  std::vector<Member> out;
  out.reserve(users.size());
  for (auto& [u, n] : users) out.push_back({std::move(u), n});
  return out;
}

std::size_t Gateway::topic_user_count(std::string_view topic) const {
  const std::lock_guard lock(state_->mutex);
  return state_->topics.user_count(topic);
}

// ---------------------------------------------------------------- closing

bool Gateway::close_client(std::string_view client_id, CloseCode code, std::string_view reason) {
  auto& st = *state_;
  const auto id = st.parse(client_id);
  if (!id) return false;
  std::uint32_t shard = 0;
  {
    const std::lock_guard lock(st.mutex);
    const auto k = st.shard_locked(*id);
    if (!k) return false;
    shard = *k;
  }
  st.run_on(shard, [sh = st.shards, shard, id = *id, code, r = std::string(reason)] {
    if (Session* s = sh->find(shard, id)) s->close(code, r);
  });
  return true;
}

std::size_t Gateway::close_user(std::string_view user, CloseCode code, std::string_view reason) {
  auto& st = *state_;
  detail::GatewayState::ByShard to(st.shards->sessions.size());
  std::size_t n = 0;
  {
    const std::lock_guard lock(st.mutex);
    for (const auto id : st.users.connections(user))
      if (const auto k = st.shard_locked(id)) {
        to[*k].push_back(id);
        ++n;
      }
  }
  for (std::size_t k = 0; k < to.size(); ++k) {
    if (to[k].empty()) continue;
    st.run_on(k, [sh = st.shards, k, ids = std::move(to[k]), code, r = std::string(reason)] {
      for (const auto id : ids)
        if (Session* s = sh->find(k, id)) s->close(code, r);
    });
  }
  return n;
}

Gateway::Stats Gateway::stats() const {
  Stats s;
  {
    const std::lock_guard lock(state_->mutex);
    s.connections = state_->connections.size();
    s.users = state_->users.user_count();
  }
  s.sends = state_->shards->sends.load(std::memory_order_relaxed);
  return s;
}

}  // namespace fanout

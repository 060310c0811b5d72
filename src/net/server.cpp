#include "fanout/server.hpp"

#include <algorithm>
#include <stdexcept>

#include <sys/resource.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <system_error>

#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#ifdef FANOUT_WITH_TLS
#include <asio/ssl/context.hpp>
#endif

#include "fanout/detail/connection_limits.hpp"
#include "fanout/detail/memory_limit.hpp"
#include "fanout/detail/queue_memory.hpp"
#include "fanout/detail/retry_advice.hpp"
#include "fanout/detail/runtime_access.hpp"
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/hub.hpp"
#include "fanout/topic_routes.hpp"

namespace fanout {

std::size_t default_queue_budget() noexcept {
  constexpr std::size_t cap = std::size_t{256} << 20;
  try {
    // RAM, or the container's (cgroup's) limit when lower: the budget must act before the OOM killer.
    const auto memory = detail::usable_memory();
    return memory ? std::min(cap, *memory / 10) : cap;
  } catch (...) {  // reading the files failed to allocate: the cap still bounds the queues
    return cap;
  }
}

namespace {
// The accounting is process-wide (frames are shared by every server's sessions): the smallest
// non-zero budget of the servers applies.
void install_budget(std::size_t budget) {
  if (budget == 0) return;
  auto& installed = detail::queue_memory().budget;
  std::size_t now = installed.load(std::memory_order_relaxed);
  while ((now == 0 || budget < now) && !installed.compare_exchange_weak(now, budget, std::memory_order_relaxed)) {
  }
}

// A server's budget changes (reload) or goes (destruction): the one in force is replaced when it
// was this server's; a smaller one stays.
void replace_budget(std::size_t old_budget, std::size_t new_budget) {
  if (old_budget != 0) {
    std::size_t mine = old_budget;
    detail::queue_memory().budget.compare_exchange_strong(mine, new_budget, std::memory_order_relaxed);
  }
  install_budget(new_budget);
}

// Validates the options and derives what the shards need from them; throws std::invalid_argument.
std::shared_ptr<const detail::ServerSnapshot> make_snapshot(Server::Options options) {
  if (!options.session.policy) throw std::invalid_argument("fanout: Session::Options::policy is null");
  detail::AdmissionNetworks networks;
  networks.trusted_proxies = detail::CidrSet(options.trusted_proxies);
  auto exempt = options.limit_exempt;
  if (options.exempt_loopback) exempt.insert(exempt.end(), {"127.0.0.0/8", "::1/128"});
  networks.exempt = detail::CidrSet(exempt);
  return std::make_shared<const detail::ServerSnapshot>(
      detail::ServerSnapshot{.options = std::move(options), .networks = std::move(networks)});
}

// The connection limits every shard reads (atomics: set from the controlling thread at any time).
void set_limits(detail::Admission& a, const Server::Options& o) {
  a.per_ip.set({.max_connections = o.max_connections_per_ip,
                .handshakes_per_second = o.handshakes_per_second_per_ip,
                .handshake_burst = std::max(1.0, o.handshake_burst_per_ip)});
  a.retry_after_ms.store(o.retry_after.count(), std::memory_order_relaxed);
  a.retry_jitter.store(o.retry_jitter, std::memory_order_relaxed);
  std::size_t max_connections = o.max_connections;
  if (max_connections == 0) {
    // Headroom under the descriptor limit for upstreams, sinks, the listeners and accept() itself,
    // so the limit answers 503 before accept fails with EMFILE.
    rlimit rl{};
    const std::size_t fds = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                                ? static_cast<std::size_t>(rl.rlim_cur)
                                : std::size_t{1} << 20;
    max_connections = fds - std::min(fds / 2, std::max<std::size_t>(64, fds / 10));
  }
  a.max_connections.store(max_connections, std::memory_order_relaxed);
}
}  // namespace

namespace detail {

ServerShard::ServerShard(Server& s, Shard& sh, asio::ip::tcp::acceptor acceptor,
                         std::shared_ptr<const ServerSnapshot> snapshot)
    : server(s),
      shard(sh),
      session_options(snapshot->options.session),
      paths(snapshot->options.paths),
      snapshot_(std::move(snapshot)),
      acceptor_(std::move(acceptor)),
      tick_timer_(sh.context()),
      accept_pause_(sh.context()) {}

ServerShard::~ServerShard() = default;

void ServerShard::apply(std::shared_ptr<const ServerSnapshot> snapshot) {
  // Between loop turns: no session is inside a call that holds a reference into the old snapshot.
  session_options = snapshot->options.session;
  snapshot_ = std::move(snapshot);
}

void ServerShard::start() {
  accept();
  tick();
}

void ServerShard::accept() {
  if (draining || !acceptor_.is_open()) return;
  acceptor_.async_accept(shard.context(), [this](const asio::error_code& ec, ShardSocket socket) {
    if (ec == asio::error::operation_aborted || draining) return;
    if (ec) {
      ShardCounters::add(accept_errors, 1);
      // Out of descriptors (EMFILE/ENFILE) or memory: back off instead of spinning on a hot loop.
      accept_pause_.expires_after(std::chrono::milliseconds(100));
      accept_pause_.async_wait([this](const asio::error_code& e) {
        if (!e) accept();
      });
      return;
    }
    start_session(std::move(socket));
    // Drain the backlog now: under load the loop polls for readiness rarely, and one accept per
    // poll would let a connection storm wait behind the fan-out.
    acceptor_.non_blocking(true);
    for (int i = 0; i < k_accept_batch && !draining; ++i) {
      asio::error_code e;
      ShardSocket more(shard.context());
      acceptor_.accept(more, e);
      if (e) break;  // would_block, or an error the next async_accept will report
      start_session(std::move(more));
    }
    accept();
  });
}

void ServerShard::start_session(ShardSocket socket) {
  ShardCounters::add(accepted, 1);
  if (options().tls)
    make_tls_session(*this, std::move(socket));
  else
    make_plain_session(*this, std::move(socket));
}

void ServerShard::tick() {
  const auto now = std::chrono::steady_clock::now();
  // Backwards: finish() swap-removes, moving an already visited session into this slot.
  for (std::size_t i = sessions_.size(); i-- > 0;) {
    if (i < sessions_.size()) sessions_[i]->tick(now);
  }
  // Sampled once per tick rather than tracked on every push and write.
  std::uint64_t queued = 0, upgraded_now = 0;
  for (const Session* s : sessions_) {
    queued += s->queued_bytes();
    upgraded_now += s->state() == Session::State::open || s->state() == Session::State::closing;
  }
  queued_bytes.store(queued, std::memory_order_relaxed);
  enforce_budget();
  websockets.store(upgraded_now, std::memory_order_relaxed);
  admission->per_ip.sweep(now_ms());
  // Many small frames (replies, pongs) freed by clients that left stay in the allocator's arenas
  // as resident memory; give it back once a lot has gone (rare: a trim walks the heap).
  // At most every few seconds: a trim walks the heap on this thread, and queues under steady load
  // swing by megabytes between ticks.
  // TLS handshakes too: each leaves ~20-40 KiB of freed buffers between the sessions that stay, so a
  // burst of them (a reconnect storm over wss) leaves the arena resident far beyond what is in use.
  queued_peak_ = std::max(queued_peak_, queued);
  const std::uint64_t handshakes = accepted.load(std::memory_order_relaxed);
  const bool many_handshakes = options().tls && handshakes - handshakes_at_trim_ >= k_trim_after_handshakes;
  if ((queued_peak_ - queued >= k_trim_after_bytes || many_handshakes) && now - last_trim_ >= k_trim_interval) {
    handshakes_at_trim_ = handshakes;
    queued_peak_ = queued;
    last_trim_ = now;
#ifdef __GLIBC__
    ::malloc_trim(0);
#endif
  }
  if (acceptor_.is_open() || !sessions_.empty()) {
    tick_timer_.expires_after(options().tick);
    tick_timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec) tick();
    });
  }
}

void ServerShard::add(Session* s) {
  s->index_in_owner_ = static_cast<std::uint32_t>(sessions_.size());
  sessions_.push_back(s);
  open.store(sessions_.size(), std::memory_order_relaxed);
  admission->connections.fetch_add(1, std::memory_order_relaxed);
  s->begin_admission();
}

void ServerShard::remove(Session* s) noexcept {
  const std::size_t i = s->index_in_owner_;
  if (i >= sessions_.size() || sessions_[i] != s) return;
  sessions_[i] = sessions_.back();
  sessions_[i]->index_in_owner_ = static_cast<std::uint32_t>(i);
  sessions_.pop_back();
  open.store(sessions_.size(), std::memory_order_relaxed);
  admission->connections.fetch_sub(1, std::memory_order_relaxed);
}

void ServerShard::begin_drain() {
  draining = true;
  asio::error_code ec;
  acceptor_.close(ec);
  accept_pause_.cancel();
  const auto& o = options();
  for (std::size_t i = sessions_.size(); i-- > 0;) {
    if (i >= sessions_.size()) continue;
    Session* s = sessions_[i];
    if (s->state() == Session::State::open)  // each its own advice: clients come back spread out
      s->close(CloseCode::service_restart,
               retry_close_reason("draining", jittered(o.drain_retry_after, o.retry_jitter)));
    else if (s->state() == Session::State::handshake)
      s->finish();
  }
}

void ServerShard::force_close() {
  draining = true;
  asio::error_code ec;
  acceptor_.close(ec);
  accept_pause_.cancel();
  tick_timer_.cancel();
  while (!sessions_.empty()) sessions_.back()->finish();
}

}  // namespace detail

namespace {
#ifdef FANOUT_WITH_TLS
std::shared_ptr<asio::ssl::context> make_tls_context(const Server::Tls& files) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  // No TLS 1.2 renegotiation: each one would cost a full handshake on the shard's thread, on the
  // client's demand (TLS 1.3 has none; key updates stay allowed).
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION);
  ctx->use_certificate_chain_file(files.cert_file);  // throws std::system_error with the reason
  ctx->use_private_key_file(files.key_file, asio::ssl::context::pem);
  detail::prepare_tls_context(*ctx);
  return ctx;
}
#endif
}  // namespace

Server::Server(Runtime& runtime, Hub& hub, Options options) : Server(runtime, hub, std::move(options), Callbacks{}) {}

Server::Server(Runtime& runtime, Hub& hub, Options options, Callbacks callbacks)
    : runtime_(runtime), hub_(hub), callbacks_(std::move(callbacks)) {
  for (const auto& p : options.paths)
    if (p.empty() || p[0] != '/') throw std::invalid_argument("fanout: WebSocket path must start with '/': " + p);
  if (options.proxy_protocol && options.tls)
    throw std::invalid_argument("fanout: proxy_protocol is for plain listeners (terminate TLS at the proxy)");
  if (options.paths.empty()) options.queue_budget_bytes = 0;  // HTTP only (an admin port): no say in it
  own_routes_from_ = options.http_routes.size();
  if (options.topic_endpoints)
    for (auto& r :
         topic_routes(hub_, {.max_age = options.http_max_age, .auth = std::make_shared<const Auth>(options.auth)}))
      options.http_routes.push_back(std::move(r));
  auto snapshot = make_snapshot(std::move(options));  // throws std::invalid_argument
  const Options& o = snapshot->options;
  admission_ = std::make_unique<detail::Admission>(detail::IpLimiter::Settings{});
  admission_->proxy_protocol = o.proxy_protocol;
  set_limits(*admission_, o);
  install_budget(o.queue_budget_bytes);
  if (o.tls) {
#ifdef FANOUT_WITH_TLS
    tls_context_ = make_tls_context(*o.tls);
#else
    throw std::invalid_argument("fanout: built without TLS (FANOUT_WITH_TLS=OFF)");
#endif
  }

  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(o.host), o.port);
  for (std::size_t i = 0; i < runtime_.shard_count(); ++i) {
    asio::ip::tcp::acceptor acceptor(runtime_.context(i));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    // One listening socket per shard on the same port: the kernel spreads connections.
    int one = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      throw std::system_error(errno, std::generic_category(), "fanout: SO_REUSEPORT");
    acceptor.bind(i == 0 ? endpoint : asio::ip::tcp::endpoint(endpoint.address(), port_));
    acceptor.listen(o.backlog);
    if (i == 0) port_ = acceptor.local_endpoint().port();
    shards_.push_back(std::make_unique<detail::ServerShard>(*this, detail::RuntimeAccess::shard(runtime_, i),
                                                            std::move(acceptor), snapshot));
    shards_.back()->tls_context = tls_context_.get();
    shards_.back()->admission = admission_.get();
  }
  snapshot_ = std::move(snapshot);
  // Started by each loop; inline when none runs it yet (a posted start could outlive the Server).
  for (std::size_t i = 0; i < shards_.size(); ++i)
    detail::RuntimeAccess::loop(runtime_, i).submit([s = shards_[i].get()] { s->start(); });
  runtime_.add_drainable(this);
}

const Server::Options& Server::options() const noexcept { return snapshot_->options; }

void Server::reload(Options fresh) {
  const Options& now = snapshot_->options;
  // What a restart would change stays as it is (see the header).
  fresh.host = now.host;
  fresh.port = now.port;
  fresh.paths = now.paths;
  fresh.tls = now.tls;
  fresh.backlog = now.backlog;
  fresh.tick = now.tick;
  fresh.proxy_protocol = now.proxy_protocol;
  fresh.topic_endpoints = now.topic_endpoints;
  fresh.http_max_age = now.http_max_age;
  if (fresh.paths.empty()) fresh.queue_budget_bytes = 0;
  // The application's routes stay; the topic routes this server added are made again, so that
  // HTTP pulls obey the new access rules too.
  fresh.http_routes.assign(now.http_routes.begin(),
                           now.http_routes.begin() + static_cast<std::ptrdiff_t>(own_routes_from_));
  if (fresh.topic_endpoints)
    for (auto& r :
         topic_routes(hub_, {.max_age = fresh.http_max_age, .auth = std::make_shared<const Auth>(fresh.auth)}))
      fresh.http_routes.push_back(std::move(r));
  const std::size_t old_budget = now.queue_budget_bytes;
  auto snapshot = make_snapshot(std::move(fresh));  // throws: nothing changed yet
  set_limits(*admission_, snapshot->options);
  replace_budget(old_budget, snapshot->options.queue_budget_bytes);
  for (std::size_t i = 0; i < shards_.size(); ++i)
    detail::RuntimeAccess::loop(runtime_, i).submit([s = shards_[i].get(), snapshot] { s->apply(snapshot); });
  snapshot_ = std::move(snapshot);
}

Server::~Server() {
  runtime_.remove_drainable(this);
  replace_budget(snapshot_->options.queue_budget_bytes, 0);
  // Each shard's part is closed and destroyed by its own loop (inline when no thread runs it), so
  // its acceptor, timers and sessions are never touched by two threads.
  for (std::size_t i = 0; i < shards_.size(); ++i)
    detail::RuntimeAccess::loop(runtime_, i).execute([&] {
      shards_[i]->force_close();
      shards_[i].reset();
    });
}

void Server::reload_tls() {
  if (!options().tls) throw std::logic_error("fanout: reload_tls on a server without TLS");
#ifdef FANOUT_WITH_TLS
  auto fresh = make_tls_context(*options().tls);  // throws: the context in use stays
  // Each shard switches on its own thread. A session's SSL holds a reference to the context it was
  // made from, so open connections are untouched; the old context goes with the last of those.
  for (std::size_t i = 0; i < shards_.size(); ++i)
    detail::RuntimeAccess::loop(runtime_, i).submit([s = shards_[i].get(), fresh, old = tls_context_] {
      s->tls_context = fresh.get();
    });
  tls_context_ = std::move(fresh);
#endif
}

void Server::begin_drain() {
  for (std::size_t i = 0; i < shards_.size(); ++i)
    detail::RuntimeAccess::loop(runtime_, i).submit([s = shards_[i].get()] { s->begin_drain(); });
}

void Server::force_close() {
  for (std::size_t i = 0; i < shards_.size(); ++i)
    detail::RuntimeAccess::loop(runtime_, i).execute([&] { shards_[i]->force_close(); });
}

std::size_t Server::open_connections() const {
  std::size_t n = 0;
  for (const auto& s : shards_) n += s->open.load(std::memory_order_relaxed);
  return n;
}

Server::Stats Server::stats() const {
  Stats st;
  for (const auto& s : shards_) {
    st.sessions += s->open.load(std::memory_order_relaxed);
    st.accepted += s->accepted.load(std::memory_order_relaxed);
    st.upgraded += s->upgraded.load(std::memory_order_relaxed);
    st.rejected += s->rejected.load(std::memory_order_relaxed);
    st.accept_errors += s->accept_errors.load(std::memory_order_relaxed);
    st.subscriptions +=
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, s->subscriptions.load(std::memory_order_relaxed)));
    const auto& c = s->shard.counters;
    st.deliveries += c.deliveries.load(std::memory_order_relaxed);
    st.writes += c.writes.load(std::memory_order_relaxed);
    st.dropped_newest += c.dropped_newest.load(std::memory_order_relaxed);
    st.dropped_oldest += c.dropped_oldest.load(std::memory_order_relaxed);
    st.conflated += c.conflated.load(std::memory_order_relaxed);
    const auto timeouts = c.write_timeouts.load(std::memory_order_relaxed);
    st.disconnected_slow += c.disconnected_slow.load(std::memory_order_relaxed) + timeouts;
    st.write_timeouts += timeouts;
    st.write_stalls += c.write_stalls.load(std::memory_order_relaxed);
    st.throttle_flushes += c.throttle_flushes.load(std::memory_order_relaxed);
    st.throttle_conflated += c.throttle_conflated.load(std::memory_order_relaxed);
    st.queued_bytes += s->queued_bytes.load(std::memory_order_relaxed);
    st.websockets += s->websockets.load(std::memory_order_relaxed);
    st.refused_total += s->refused_total.load(std::memory_order_relaxed);
    st.refused_per_ip += s->refused_per_ip.load(std::memory_order_relaxed);
    st.refused_rate += s->refused_rate.load(std::memory_order_relaxed);
    st.head_timeouts += s->head_timeouts.load(std::memory_order_relaxed);
    st.subscribe_timeouts += s->subscribe_timeouts.load(std::memory_order_relaxed);
    st.rate_limited += s->rate_limited.load(std::memory_order_relaxed);
    st.reply_overflows += s->reply_overflows.load(std::memory_order_relaxed);
    st.read_pauses += s->read_pauses.load(std::memory_order_relaxed);
    st.deltas_written += s->deltas_written.load(std::memory_order_relaxed);
    st.drop_notices += s->drop_notices.load(std::memory_order_relaxed);
    st.tls_own_records += s->tls_own_records.load(std::memory_order_relaxed);
    st.tls_record_errors += s->tls_record_errors.load(std::memory_order_relaxed);
    st.budget_dropped += c.budget_dropped.load(std::memory_order_relaxed);
    st.budget_disconnected += c.budget_disconnected.load(std::memory_order_relaxed);
    const auto cap = s->budget_cap.load(std::memory_order_relaxed);
    if (cap != 0 && (st.budget_cap_frames == 0 || cap < st.budget_cap_frames)) st.budget_cap_frames = cap;
  }
  const auto& memory = detail::queue_memory();
  st.queue_budget_bytes = memory.budget.load(std::memory_order_relaxed);
  st.queue_slot_bytes = memory.slot_bytes.load(std::memory_order_relaxed);
  st.frame_bytes = memory.queued_frame_bytes();
  st.queue_memory_bytes = st.queue_slot_bytes + st.frame_bytes;
  st.max_connections = admission_->max_connections.load(std::memory_order_relaxed);
  return st;
}

Histogram::Snapshot Server::publish_to_write_latency() const {
  Histogram::Snapshot all;
  for (const auto& s : shards_) all.merge(s->shard.counters.publish_to_write.snapshot());
  return all;
}

}  // namespace fanout

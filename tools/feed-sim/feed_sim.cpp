#include "feed_sim.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core.hpp"
#include "request.hpp"
#include "session.hpp"

namespace fanout::sim {
namespace detail {
namespace {

constexpr std::uint64_t k_max_burst = 1000;  // ticks caught up per timer expiry

std::int64_t unix_micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

Core::Stream* Core::find_or_create(const std::string& channel, const std::string& inst) {
  std::string key = stream_key(channel, inst);
  if (auto it = streams.find(key); it != streams.end()) return &it->second;
  if (streams.size() >= opts.max_streams) return nullptr;
  Stream st{channel, inst, 0, 0.0, {}};
  // A plausible starting price, stable per instrument.
  if (inst.starts_with("BTC"))
    st.last = 64000.0;
  else if (inst.starts_with("ETH"))
    st.last = 3200.0;
  else
    st.last = 1.0 + double(std::hash<std::string>{}(inst) % 1000);
  ++stat_streams;
  return &streams.emplace(std::move(key), std::move(st)).first->second;
}

void Core::unregister(Session& s) {
  for (auto& key : s.subscriptions()) {
    auto it = streams.find(key);
    if (it == streams.end()) continue;
    std::erase_if(it->second.subscribers, [&s](const auto& p) { return p.get() == &s; });
    --stat_subscriptions;
  }
  s.subscriptions().clear();
  sessions.erase(s.id());
}

void Core::start() {
  if (opts.tls_cert.empty() != opts.tls_key.empty())
    throw std::invalid_argument("feed-sim: TLS needs both a certificate and a key");
  if (!(opts.rate >= 0) || !std::isfinite(opts.rate)) throw std::invalid_argument("feed-sim: rate must be >= 0");
  if (!opts.tls_cert.empty()) {
    tls.emplace(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3);
    tls->use_certificate_chain_file(opts.tls_cert);
    tls->use_private_key_file(opts.tls_key, asio::ssl::context::pem);
  }

  tcp::resolver resolver(ioc);
  auto endpoint = resolver.resolve(opts.host, std::to_string(opts.port), tcp::resolver::passive).begin()->endpoint();
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  bound_port = acceptor.local_endpoint().port();

  std::uniform_int_distribution<int> pick(0, 61);
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  pad.resize(std::max<std::size_t>(opts.size, 1));
  for (auto& c : pad) c = alphabet[std::size_t(pick(rng))];

  for (auto& inst : opts.instruments)
    if (valid_name(inst)) find_or_create("tickers", inst);

  stat_silent = silent;
  apply_rate(rate);
  accept();
  running = true;
  thread = std::thread([this] { ioc.run(); });
}

void Core::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket socket) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Typically EMFILE: wait a little rather than spin.
      log("accept: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](error_code e) {
        if (!e && !stopping) accept();
      });
      return;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto id = next_id++;
    log("conn {}: accepted from {}", id, socket.remote_endpoint(ignored).address().to_string());
    auto s = std::make_shared<Session>(*this, std::move(socket), id);
    sessions.emplace(id, s);
    s->start();
    accept();
  });
}

void Core::shutdown() {
  stopping = true;
  error_code ignored;
  acceptor.close(ignored);
  tick_timer.cancel();
  accept_retry.cancel();
  for (auto& s : all_sessions()) s->abort();
}

void Core::apply_rate(double per_second) {
  rate = per_second;
  stat_rate = per_second;
  rate_start = Clock::now();
  emitted = 0;
  ++tick_generation;
  tick_timer.cancel();
  schedule_tick();
}

void Core::schedule_tick() {
  if (rate <= 0 || stopping) return;
  auto due = rate_start +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(double(emitted + 1) / rate));
  // At high rates fire at most every millisecond and catch up in bursts.
  tick_timer.expires_at(std::max(due, Clock::now() + std::chrono::milliseconds(1)));
  tick_timer.async_wait([this, generation = tick_generation](error_code ec) {
    if (!ec) on_tick(generation);
  });
}

void Core::on_tick(std::uint64_t generation) {
  if (generation != tick_generation || stopping) return;  // the rate changed meanwhile
  double elapsed = std::chrono::duration<double>(Clock::now() - rate_start).count();
  auto target = std::uint64_t(elapsed * rate + 1e-6);
  std::uint64_t due = target > emitted ? target - emitted : 0;
  if (due > k_max_burst) {
    // Too far behind (a stall, or a rate we cannot keep up with): slip the schedule, keeping seq
    // contiguous rather than bursting without bound.
    emitted += due - k_max_burst;
    due = k_max_burst;
  }
  for (std::uint64_t i = 0; i < due; ++i, ++emitted) emit_tick();
  schedule_tick();
}

void Core::emit_tick() {
  std::uniform_real_distribution<double> step(-2e-4, 2e-4);
  auto ts = unix_micros();
  for (auto& [key, st] : streams) {
    ++st.seq;
    st.last = std::max(0.1, st.last * (1.0 + step(rng)));
    if (st.subscribers.empty() || silent) continue;
    auto payload = fmt::format(
        R"({{"arg":{{"channel":"{}","instId":"{}"}},"data":[{{"instId":"{}","last":"{:.1f}","seq":{},"ts":{},"pad":")",
        st.channel, st.inst, st.inst, st.last, st.seq, ts);
    constexpr std::size_t tail = 4;  // "}]}
    if (payload.size() + tail < opts.size) payload.append(pad, 0, opts.size - payload.size() - tail);
    payload += R"("}]})";
    Message m(std::move(payload), codecs);
    for (auto& s : st.subscribers) s->deliver(m);  // deliver never removes subscribers synchronously
  }
}

}  // namespace detail

using detail::Bytes;
using detail::Core;
using detail::Session;

struct FeedSimulator::Impl : Core {
  using Core::Core;
};

// ---------------------------------------------------------------------------------------------

FeedSimulator::FeedSimulator(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

FeedSimulator::~FeedSimulator() { stop(); }

void FeedSimulator::start() {
  if (impl_->started) throw std::logic_error("feed-sim: start() may be called once");
  impl_->started = true;
  impl_->start();
}

void FeedSimulator::stop() {
  if (!impl_->running.exchange(false)) return;
  asio::post(impl_->ioc, [impl = impl_.get()] {
    impl->shutdown();
    // Anything still pending (a TLS operation mid-flight) is destroyed with the io_context.
    asio::post(impl->ioc, [impl] { impl->ioc.stop(); });
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t FeedSimulator::port() const { return impl_->bound_port; }

std::size_t FeedSimulator::drop_connections() {
  return impl_->run_sync([impl = impl_.get()] {
    auto all = impl->all_sessions();
    for (auto& s : all) s->abort();
    return all.size();
  });
}

std::size_t FeedSimulator::drop_one_connection() {
  return impl_->run_sync([impl = impl_.get()] {
    // Ids grow with each accept, so the smallest open one is the oldest connection.
    std::shared_ptr<Session> oldest;
    for (auto& s : impl->all_sessions())
      if (s->is_open() && (!oldest || s->id() < oldest->id())) oldest = s;
    if (!oldest) return std::size_t{0};
    oldest->abort();
    return std::size_t{1};
  });
}

void FeedSimulator::set_silent(bool on) {
  impl_->run_sync([impl = impl_.get(), on] {
    bool was = impl->silent;
    impl->silent = on;
    impl->stat_silent = on;
    if (was && !on)
      for (auto& s : impl->all_sessions()) s->unsilence();
  });
}

std::size_t FeedSimulator::send_garbage_json() {
  return impl_->run_sync([impl = impl_.get()] {
    std::size_t n = 0;
    for (auto& s : impl->all_sessions()) {
      if (!s->is_open()) continue;
      s->send_text(R"({"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1.0",,}]} not json)");
      ++n;
    }
    return n;
  });
}

std::size_t FeedSimulator::send_garbage_frame() {
  return impl_->run_sync([impl = impl_.get()] {
    // FIN + reserved opcode 0x3, 7 bytes of payload: every conforming client must fail the connection.
    static const Bytes frame = std::make_shared<const std::string>(std::string("\x83\x07", 2) + "garbage");
    std::size_t n = 0;
    for (auto& s : impl->all_sessions()) {
      if (!s->is_open()) continue;
      s->send_raw(frame);
      ++n;
    }
    return n;
  });
}

void FeedSimulator::set_handshake_delay(std::chrono::milliseconds delay) {
  impl_->run_sync([impl = impl_.get(), delay] { impl->handshake_delay = delay; });
}

void FeedSimulator::set_rate(double per_second) {
  if (!(per_second >= 0) || !std::isfinite(per_second)) throw std::invalid_argument("feed-sim: rate must be >= 0");
  impl_->run_sync([impl = impl_.get(), per_second] { impl->apply_rate(per_second); });
}

FeedSimulator::Stats FeedSimulator::stats() const {
  const Impl& i = *impl_;
  Stats s;
  s.connections = i.stat_connections;
  s.subscriptions = i.stat_subscriptions;
  s.messages_sent = i.stat_messages;
  s.bytes_sent = i.stat_bytes;
  s.streams = i.stat_streams;
  s.connections_total = i.stat_total;
  s.slow_drops = i.stat_slow;
  s.rate = i.stat_rate;
  s.silent = i.stat_silent;
  return s;
}

std::string to_json(const FeedSimulator::Stats& s) {
  return fmt::format(R"({{"connections":{},"subscriptions":{},"messages_sent":{},"bytes_sent":{},"streams":{},)"
                     R"("connections_total":{},"slow_drops":{},"rate":{},"silent":{}}})",
                     s.connections, s.subscriptions, s.messages_sent, s.bytes_sent, s.streams, s.connections_total,
                     s.slow_drops, s.rate, s.silent);
}

}  // namespace fanout::sim

#include "backend_proxy.hpp"

#include <fanout/redact.hpp>
#include <fanout/session.hpp>
#include <fmt/format.h>

#include "backend_wire.hpp"

namespace relay {
namespace {

BackendPool::Options pool_options(const ProxyConfig& c) {
  return {.base_url = c.url,
          .timeout = c.timeout,
          .workers = c.max_in_flight,
          .max_queue = c.max_queue,
          .max_queue_bytes = c.max_queue_bytes,
          .max_response_bytes = c.max_response_bytes};
}

std::string hex_id(std::uint64_t id) { return fmt::format("{:x}", id); }

constexpr std::string_view k_message_busy =
    R"({"event":"error","op":"message","code":4503,"msg":"backend busy: message not delivered"})";

}  // namespace

BackendProxy::BackendProxy(const ProxyConfig& config, Log log)
    : config_(config),
      log_(std::move(log)),
      shown_url_(fanout::redact_url(config.url)),
      pool_(pool_options(config)),
      // Three quarters of the queue: a flood of client messages cannot refuse the next connects.
      client_limit_(std::max<std::size_t>(1, config.max_queue - config.max_queue / 4)) {}

fanout::Server::Callbacks BackendProxy::callbacks(ClientIdOf client_id) {
  fanout::Server::Callbacks cb;
  if (config_.connect)
    cb.on_connect = [this](const fanout::ConnectRequest& req, fanout::ConnectDecide decide) {
      const std::string client = req.client_id.empty() ? hex_id(req.session_id) : req.client_id;
      auto body = wire::connect_body(req, client, config_.headers);
      // `decide` is shared: submit() may refuse, and then it is called here.
      auto shared = std::make_shared<fanout::ConnectDecide>(std::move(decide));
      if (!pool_.submit("/connect", std::move(body),
                        [this, shared](BackendPool::Result r) { (*shared)(this->decide(r)); })) {
        ++connects_failed_;
        failed("connect", {}, "queue full");
        (*shared)(fanout::ConnectDecision::refused(503, "backend busy"));
      }
    };
  if (config_.message)
    cb.on_message = [this, client_id](fanout::Session& s, std::string_view payload, fanout::Opcode op) {
      auto body = wire::message_body(client_id(s), s.user_id(), payload, op == fanout::Opcode::binary);
      const bool queued = pool_.submit(
          "/message", std::move(body),
          [this](BackendPool::Result r) {
            if (r.outcome == BackendPool::Outcome::ok) return;
            ++messages_failed_;
            failed("message", r);
          },
          client_limit_);
      if (!queued) {
        ++messages_failed_;
        failed("message", {}, "queue full");
        s.send(k_message_busy);
      }
    };
  if (config_.rpc)
    cb.on_rpc = [this, client_id](fanout::Session& s, const fanout::RpcRequest& req, fanout::RpcReply reply) {
      auto body = wire::rpc_body(client_id(s), s.user_id(), req.id, req.method, req.data);
      if (!pool_.submit(
              "/rpc", std::move(body), [this, reply](BackendPool::Result r) { answer_rpc(r, reply); }, client_limit_)) {
        ++rpcs_failed_;
        failed("rpc", {}, "queue full");
        reply.error(4503, "backend busy");
      }
    };
  if (config_.disconnect) {
    cb.on_open = [this, client_id](fanout::Session& s) {
      std::lock_guard lock(open_mutex_);
      open_.emplace(s.id(), client_id(s));
    };
    cb.on_close = [this](fanout::Session& s) {
      std::string client;
      {
        std::lock_guard lock(open_mutex_);
        auto it = open_.find(s.id());
        if (it == open_.end()) return;  // never upgraded: the backend never saw it connect
        client = std::move(it->second);
        open_.erase(it);
      }
      auto body = wire::disconnect_body(client, s.user_id());
      const bool queued = pool_.submit(
          "/disconnect", std::move(body),
          [this](BackendPool::Result r) {
            if (r.outcome == BackendPool::Outcome::ok || r.outcome == BackendPool::Outcome::stopped) return;
            ++disconnects_failed_;
            failed("disconnect", r);
          },
          client_limit_);
      if (!queued) {
        ++disconnects_failed_;
        failed("disconnect", {}, "queue full");
      }
    };
  }
  return cb;
}

fanout::ConnectDecision BackendProxy::decide(const BackendPool::Result& r) {
  using Outcome = BackendPool::Outcome;
  if (r.outcome == Outcome::ok) {
    std::string why;
    if (auto d = wire::parse_connect_answer(r.body, {}, why)) {
      ++(d->accept ? connects_accepted_ : connects_refused_);
      return *std::move(d);
    }
    ++connects_failed_;
    failed("connect", r, fmt::format("bad answer: {}", why));
    return fanout::ConnectDecision::refused(502, "bad answer from the backend");
  }
  ++connects_failed_;
  failed("connect", r);
  switch (r.outcome) {
    case Outcome::timeout: return fanout::ConnectDecision::refused(504, "backend timeout");
    case Outcome::stopped: return fanout::ConnectDecision::refused(503, "relay stopping");
    default: return fanout::ConnectDecision::refused(502, "backend unavailable");
  }
}

void BackendProxy::answer_rpc(const BackendPool::Result& r, const fanout::RpcReply& reply) {
  using Outcome = BackendPool::Outcome;
  if (r.outcome == Outcome::ok) {
    std::string why;
    if (auto a = wire::parse_rpc_answer(r.body, why)) {
      ++rpcs_answered_;
      if (a->ok)
        reply.result(a->data);
      else
        reply.error(a->code, a->msg);
      return;
    }
    ++rpcs_failed_;
    failed("rpc", r, fmt::format("bad answer: {}", why));
    reply.error(4502, "bad answer from the backend");
    return;
  }
  ++rpcs_failed_;
  if (r.outcome != Outcome::stopped) failed("rpc", r);
  if (r.outcome == Outcome::timeout)
    reply.error(4504, "backend timeout");
  else if (r.outcome == Outcome::stopped)
    reply.error(4503, "relay stopping");
  else
    reply.error(4502, "backend unavailable");
}

void BackendProxy::failed(std::string_view event, const BackendPool::Result& r, std::string_view why) {
  std::uint64_t skipped = 0;
  {
    std::lock_guard lock(log_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log_ < std::chrono::seconds(1)) {
      ++unlogged_;
      return;
    }
    last_log_ = now;
    skipped = std::exchange(unlogged_, 0);
  }
  // Never the bodies or headers: they carry cookies and tokens. The error text may quote the URL.
  std::string what = !why.empty() ? std::string(why)
                     : r.outcome == BackendPool::Outcome::http_error
                         ? fmt::format("HTTP {}", r.http_status)
                         : fmt::format("{}: {}", to_string(r.outcome), fanout::redact_text(r.error));
  log_(fmt::format("proxy: {} to {}/{} failed: {}{}", event, shown_url_, event, what,
                   skipped ? fmt::format(" ({} more failures not logged)", skipped) : std::string()));
}

BackendProxy::Stats BackendProxy::stats() const {
  return {.pool = pool_.stats(),
          .connects_accepted = connects_accepted_,
          .connects_refused = connects_refused_,
          .connects_failed = connects_failed_,
          .rpcs_answered = rpcs_answered_,
          .rpcs_failed = rpcs_failed_,
          .messages_failed = messages_failed_,
          .disconnects_failed = disconnects_failed_};
}

fanout::MetricRegistrations BackendProxy::add_metrics(fanout::MetricsRegistry& registry) const {
  using Type = fanout::MetricsRegistry::Type;
  using Samples = std::vector<fanout::MetricsRegistry::Sample>;
  fanout::MetricRegistrations r;
  auto family = [&](std::string name, std::string help, Type type, std::function<Samples(const Stats&)> read) {
    r.push_back(registry.add_family(std::move(name), std::move(help), type, [this, read] { return read(stats()); }));
  };
  auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  family("fanout_relay_proxy_requests_total",
         "Backend proxy requests by result: ok (2xx), failed (sent, no good answer), busy (refused: queue full)",
         Type::counter, [d](const Stats& s) {
           return Samples{{{{"result", "ok"}}, d(s.pool.ok)},
                          {{{"result", "failed"}}, d(s.pool.failed)},
                          {{{"result", "busy"}}, d(s.pool.refused)}};
         });
  family("fanout_relay_proxy_queued", "Backend proxy requests waiting for a worker", Type::gauge, [d](const Stats& s) {
    return Samples{{{}, d(s.pool.queued)}};
  });
  family("fanout_relay_proxy_in_flight", "Backend proxy requests being sent", Type::gauge, [d](const Stats& s) {
    return Samples{{{}, d(s.pool.in_flight)}};
  });
  family("fanout_relay_proxy_connects_total",
         "Connects decided through the backend: accepted, refused (by the backend), failed (502/503/504)",
         Type::counter, [d](const Stats& s) {
           return Samples{{{{"decision", "accepted"}}, d(s.connects_accepted)},
                          {{{"decision", "refused"}}, d(s.connects_refused)},
                          {{{"decision", "failed"}}, d(s.connects_failed)}};
         });
  family("fanout_relay_proxy_rpcs_total", "Rpcs sent to the backend: answered (data or its error), failed (45xx)",
         Type::counter, [d](const Stats& s) {
           return Samples{{{{"result", "answered"}}, d(s.rpcs_answered)}, {{{"result", "failed"}}, d(s.rpcs_failed)}};
         });
  family("fanout_relay_proxy_event_failures_total", "Messages and disconnects the backend did not take", Type::counter,
         [d](const Stats& s) {
           return Samples{{{{"event", "message"}}, d(s.messages_failed)},
                          {{{"event", "disconnect"}}, d(s.disconnects_failed)}};
         });
  return r;
}

std::string BackendProxy::stats_line() const {
  const auto s = stats();
  return fmt::format(
      "stats: proxy sent {} ok {} failed {} busy {} queued {} in flight {}; connects accepted {} refused {} "
      "failed {}; rpcs answered {} failed {}; messages failed {}; disconnects failed {}",
      s.pool.sent, s.pool.ok, s.pool.failed, s.pool.refused, s.pool.queued, s.pool.in_flight, s.connects_accepted,
      s.connects_refused, s.connects_failed, s.rpcs_answered, s.rpcs_failed, s.messages_failed, s.disconnects_failed);
}

}  // namespace relay

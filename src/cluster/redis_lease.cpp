#include "fanout/redis_lease.hpp"

#include <hiredis/hiredis.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include <array>
#include <random>
#include <stdexcept>

#include "fanout/detail/redis_connection.hpp"

namespace fanout {
namespace {

// KEYS: lease, fence. ARGV: token, ttl ms. The new fencing number, or 0 when someone else holds it.
constexpr std::string_view k_acquire = R"lua(
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('INCR', KEYS[2]) end
return 0
)lua";
// KEYS: lease. ARGV: token, ttl ms. 1 when extended, 0 when the lease is no longer ours.
constexpr std::string_view k_renew = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
)lua";
// KEYS: lease. ARGV: token.
constexpr std::string_view k_release = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

using Clock = std::chrono::steady_clock;

}  // namespace

struct RedisLease::Impl {
  Impl(RedisLease& owner, asio::io_context& io, Options o, Handler h)
      : owner(owner),
        options(std::move(o)),
        handler(std::move(h)),
        redis(io,
              {.host = options.host,
               .port = options.port,
               .connect_timeout = options.connect_timeout,
               .backoff_initial = std::chrono::milliseconds(50),
               .backoff_max = options.backoff_max,
               .name = "redis lease"},
              [this](bool up, std::string_view) {
                if (up) tick();
              }),
        tick_timer(io),
        expiry_timer(io),
        lease_key(fmt::format("{}:lease:{}", options.prefix, options.stream)),
        fence_key(fmt::format("{}:fence:{}", options.prefix, options.stream)),
        ttl(std::to_string(options.ttl.count())) {}

  void schedule_tick() {
    const auto interval = owner.leader() ? options.renew_interval : options.retry_interval;
    tick_timer.expires_after(interval);
    tick_timer.async_wait([this, life = life](const asio::error_code& ec) {
      if (!*life || ec || !running) return;
      tick();
    });
  }

  void tick() {
    if (!running) return;
    if (!in_flight && redis.connected()) {
      const auto sent = Clock::now();
      if (owner.leader()) {
        std::array<std::string_view, 6> args{"EVAL", k_renew, "1", lease_key, owner.token_, ttl};
        in_flight = redis.command(args, [this, sent, fence = owner.fence()](redisReply* r) {
          in_flight = false;
          if (!owner.leader() || owner.fence() != fence) return;
          if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
            extend(sent);
          else if (r && r->type == REDIS_REPLY_INTEGER)
            step_down("the lease is held by another candidate");
          // No answer: keep trying until the local deadline says otherwise.
        });
      } else {
        std::array<std::string_view, 7> args{"EVAL", k_acquire, "2", lease_key, fence_key, owner.token_, ttl};
        in_flight = redis.command(args, [this, sent](redisReply* r) {
          in_flight = false;
          if (!running || owner.leader()) return;
          if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            owner.fence_.store(static_cast<std::uint64_t>(r->integer), std::memory_order_release);
            extend(sent);
            if (handler) handler(true, owner.fence(), "lease won");
            schedule_tick();
          }
        });
      }
    }
    schedule_tick();
  }

  // Leader until ttl - margin after `sent`: the key cannot have expired in Redis before that.
  void extend(Clock::time_point sent) {
    const auto margin = std::max(options.ttl / 10, std::chrono::milliseconds(20));
    expiry_timer.expires_at(sent + options.ttl - margin);
    expiry_timer.async_wait([this, life = life, fence = owner.fence()](const asio::error_code& ec) {
      if (!*life || ec || owner.fence() != fence) return;
      step_down("no renewal confirmed within the lease ttl");
    });
  }

  void step_down(std::string_view why) {
    if (!owner.leader()) return;
    owner.fence_.store(0, std::memory_order_release);
    expiry_timer.cancel();
    if (handler) handler(false, 0, why);
  }

  RedisLease& owner;
  Options options;
  Handler handler;
  detail::RedisConnection redis;
  asio::steady_timer tick_timer, expiry_timer;
  const std::string lease_key, fence_key, ttl;
  bool running = false, in_flight = false;
  std::shared_ptr<bool> life = std::make_shared<bool>(true);
};

RedisLease::RedisLease(asio::io_context& io, Options options, Handler handler) {
  if (options.ttl < std::chrono::milliseconds(100)) throw std::invalid_argument("lease ttl must be at least 100 ms");
  if (options.renew_interval.count() == 0) options.renew_interval = options.ttl / 3;
  if (options.retry_interval.count() == 0) options.retry_interval = options.ttl / 6;
  if (options.renew_interval >= options.ttl || options.retry_interval >= options.ttl)
    throw std::invalid_argument("lease renew and retry intervals must be below the ttl");
  std::random_device rd;
  token_ = fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
  impl_ = std::make_shared<Impl>(*this, io, std::move(options), std::move(handler));
}

RedisLease::~RedisLease() { *impl_->life = false; }

void RedisLease::start() {
  if (impl_->running) return;
  impl_->running = true;
  impl_->redis.start();
}

void RedisLease::stop(std::function<void()> done) {
  Impl& i = *impl_;
  const bool was_running = i.running;
  i.running = false;
  i.tick_timer.cancel();
  const bool held = leader();
  i.step_down("stopping");
  auto finish = [&i, done = std::move(done)] {
    i.redis.stop();
    if (done) done();
  };
  if (was_running && held && i.redis.connected()) {
    std::array<std::string_view, 5> args{"EVAL", k_release, "1", i.lease_key, token_};
    auto shared_finish = std::make_shared<decltype(finish)>(std::move(finish));
    if (i.redis.command(args, [shared_finish](redisReply*) { (*shared_finish)(); })) return;
    (*shared_finish)();
    return;
  }
  finish();
}

void RedisLease::deposed() {
  asio::post(impl_->tick_timer.get_executor(), [w = std::weak_ptr<Impl>(impl_)] {
    if (auto i = w.lock(); i && *i->life) i->step_down("a publish was refused: the fencing number moved on");
  });
}

}  // namespace fanout

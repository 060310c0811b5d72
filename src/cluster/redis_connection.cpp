#include "fanout/detail/redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <asio/post.hpp>

#include <algorithm>
#include <array>
#include <vector>

namespace fanout::detail {

struct RedisConnection::ReplyBox {
  ReplyHandler handler;
};

RedisConnection::RedisConnection(asio::io_context& io, Options options, StateHandler on_state, PushHandler on_push)
    : io_(io),
      options_(std::move(options)),
      on_state_(std::move(on_state)),
      on_push_(std::move(on_push)),
      resolver_(io),
      socket_(io),
      timer_(io) {}

RedisConnection::~RedisConnection() {
  closing_ = true;
  running_ = false;
  if (ac_) redisAsyncFree(ac_);  // handlers are not called: closing_
  if (socket_.is_open()) socket_.release();
  *life_ = false;
}

void RedisConnection::start() {
  if (running_) return;
  running_ = true;
  backoff_ = std::chrono::milliseconds(0);
  connect();
}

void RedisConnection::stop() {
  if (!running_) return;
  running_ = false;
  timer_.cancel();
  resolver_.cancel();
  if (ac_) redisAsyncFree(ac_);  // pending handlers get nullptr (posted)
}

void RedisConnection::reset(std::string_view reason) {
  if (!ac_) return;
  last_error_ = reason;
  redisAsyncFree(ac_);
}

// Handlers of asio operations check the life token first: the connection may be gone by the time an
// aborted wait is delivered.
#define FANOUT_REDIS_ALIVE(life) \
  if (!*life) return

void RedisConnection::connect() {
  if (!running_ || ac_) return;
  last_error_.clear();
  const auto gen = ++generation_;
  timer_.expires_after(options_.connect_timeout);
  timer_.async_wait([this, life = life_, gen](const asio::error_code& ec) {
    FANOUT_REDIS_ALIVE(life);
    if (ec || gen != generation_ || connected_) return;
    if (ac_) {
      reset("connect timeout");
    } else {
      resolver_.cancel();
      last_error_ = "connect timeout (resolving)";
    }
  });
  resolver_.async_resolve(
      options_.host, std::to_string(options_.port),
      [this, life = life_, gen](const asio::error_code& ec, asio::ip::tcp::resolver::results_type r) {
        FANOUT_REDIS_ALIVE(life);
        if (gen != generation_ || !running_) return;
        if (ec || r.empty()) {
          lost(last_error_.empty() ? "cannot resolve " + options_.host + ": " + ec.message() : last_error_);
          return;
        }
        connect_to(r.begin()->endpoint().address());
      });
}

void RedisConnection::connect_to(const asio::ip::address& address) {
  redisAsyncContext* ac = redisAsyncConnect(address.to_string().c_str(), options_.port);
  if (!ac || ac->err) {
    std::string reason = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    lost(reason);
    return;
  }
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &ev_add_read;
  ac->ev.delRead = &ev_del_read;
  ac->ev.addWrite = &ev_add_write;
  ac->ev.delWrite = &ev_del_write;
  ac->ev.cleanup = &ev_cleanup;
  asio::error_code ec;
  socket_.assign(ac->c.fd, ec);
  ac_ = ac;
  if (ec) {
    reset("cannot watch the socket: " + ec.message());
    return;
  }
  redisAsyncSetConnectCallback(ac, &on_connect);  // starts waiting for writability
}

void RedisConnection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (status != REDIS_OK) {
    self->last_error_ = ac->errstr;  // hiredis frees the context next; ev_cleanup reports it
    return;
  }
  self->connected_ = true;
  self->backoff_ = std::chrono::milliseconds(0);
  self->timer_.cancel();
  asio::post(self->io_, [self, life = self->life_, gen = self->generation_] {
    FANOUT_REDIS_ALIVE(life);
    if (gen == self->generation_ && self->connected_ && self->on_state_) self->on_state_(true, {});
  });
}

void RedisConnection::wait_read() {
  if (!ac_ || !want_read_ || reading_) return;
  reading_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                     [this, life = life_, gen = generation_](const asio::error_code& ec) {
                       FANOUT_REDIS_ALIVE(life);
                       if (gen != generation_) return;
                       reading_ = false;
                       if (ec || !want_read_ || !ac_) return;
                       redisAsyncHandleRead(ac_);  // may free the context (ev_cleanup bumps generation_)
                       if (gen == generation_) wait_read();
                     });
}

void RedisConnection::wait_write() {
  if (!ac_ || !want_write_ || writing_) return;
  writing_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_write,
                     [this, life = life_, gen = generation_](const asio::error_code& ec) {
                       FANOUT_REDIS_ALIVE(life);
                       if (gen != generation_) return;
                       writing_ = false;
                       if (ec || !want_write_ || !ac_) return;
                       redisAsyncHandleWrite(ac_);
                       if (gen == generation_) wait_write();
                     });
}

void RedisConnection::ev_add_read(void* p) {
  auto* self = static_cast<RedisConnection*>(p);
  self->want_read_ = true;
  self->wait_read();
}
void RedisConnection::ev_del_read(void* p) { static_cast<RedisConnection*>(p)->want_read_ = false; }
void RedisConnection::ev_add_write(void* p) {
  auto* self = static_cast<RedisConnection*>(p);
  self->want_write_ = true;
  self->wait_write();
}
void RedisConnection::ev_del_write(void* p) { static_cast<RedisConnection*>(p)->want_write_ = false; }

// hiredis is freeing the context (error, EOF, or our redisAsyncFree): the fd is closed by hiredis.
void RedisConnection::ev_cleanup(void* p) {
  auto* self = static_cast<RedisConnection*>(p);
  std::string reason = self->last_error_;
  if (reason.empty() && self->ac_ && self->ac_->err) reason = self->ac_->errstr;
  if (reason.empty()) reason = self->running_ ? "connection closed" : "stopped";
  if (self->socket_.is_open()) self->socket_.release();
  self->ac_ = nullptr;
  ++self->generation_;
  self->want_read_ = self->want_write_ = self->reading_ = self->writing_ = false;
  self->connected_ = false;
  if (self->closing_) return;
  // Reported from the loop, outside hiredis' call stack, so the handler may use this connection.
  asio::post(self->io_, [self, life = self->life_, reason = std::move(reason)] {
    FANOUT_REDIS_ALIVE(life);
    self->lost(reason);
  });
}

void RedisConnection::lost(std::string_view reason) {
  connected_ = false;
  if (on_state_) on_state_(false, reason);
  schedule_reconnect();
}

void RedisConnection::schedule_reconnect() {
  if (!running_ || ac_) return;
  backoff_ = backoff_.count() == 0 ? options_.backoff_initial : std::min(backoff_ * 2, options_.backoff_max);
  // Full jitter: edges that lost the same Redis do not come back in step.
  std::uniform_int_distribution<std::int64_t> pick(1, std::max<std::int64_t>(1, backoff_.count()));
  const auto gen = ++generation_;
  timer_.expires_after(std::chrono::milliseconds(pick(rng_)));
  timer_.async_wait([this, life = life_, gen](const asio::error_code& ec) {
    FANOUT_REDIS_ALIVE(life);
    if (ec || gen != generation_) return;
    connect();
  });
}

bool RedisConnection::send(std::span<const std::string_view> args, void (*fn)(redisAsyncContext*, void*, void*),
                           void* privdata) {
  if (!connected_ || !ac_ || args.empty()) return false;
  constexpr std::size_t k_inline = 16;
  std::array<const char*, k_inline> argv_small;
  std::array<std::size_t, k_inline> len_small;
  std::vector<const char*> argv_big;
  std::vector<std::size_t> len_big;
  const char** argv = argv_small.data();
  std::size_t* lens = len_small.data();
  if (args.size() > k_inline) {
    argv_big.resize(args.size());
    len_big.resize(args.size());
    argv = argv_big.data();
    lens = len_big.data();
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  return redisAsyncCommandArgv(ac_, fn, privdata, static_cast<int>(args.size()), argv, lens) == REDIS_OK;
}

bool RedisConnection::command(std::span<const std::string_view> args, ReplyHandler handler) {
  auto box = std::make_unique<ReplyBox>(ReplyBox{std::move(handler)});
  if (!send(args, &on_reply, box.get())) return false;
  box.release();  // owned by hiredis until on_reply
  ++pending_;
  return true;
}

bool RedisConnection::push_command(std::span<const std::string_view> args) {
  return send(args, &on_push_reply, nullptr);
}

void RedisConnection::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  std::unique_ptr<ReplyBox> box(static_cast<ReplyBox*>(privdata));
  if (self->pending_) --self->pending_;
  if (self->closing_ || !box->handler) return;
  if (reply) {
    box->handler(static_cast<redisReply*>(reply));
    return;
  }
  // The connection is being freed: run the handler from the loop, outside hiredis.
  self->connected_ = false;
  asio::post(self->io_, [life = self->life_, h = std::move(box->handler)] {
    FANOUT_REDIS_ALIVE(life);
    h(nullptr);
  });
}

void RedisConnection::on_push_reply(redisAsyncContext* ac, void* reply, void*) {
  auto* self = static_cast<RedisConnection*>(ac->data);
  if (self->closing_ || !reply || !self->on_push_) return;
  self->on_push_(static_cast<redisReply*>(reply));
}

#undef FANOUT_REDIS_ALIVE

}  // namespace fanout::detail

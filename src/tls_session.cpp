// A session over TLS (wss://). Each client's bytes are encrypted separately anyway, so writes copy
// the queued frames into one buffer per write; reads use a small buffer of the session's own.
#include "fanout/detail/server_shard.hpp"
#include "fanout/detail/shard.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

#ifdef FANOUT_WITH_TLS
#include <asio/ssl.hpp>
#include <asio/write.hpp>

#include <cstring>
#include <vector>

namespace fanout {
namespace detail {
namespace {

class TlsSession final : public Session {
 public:
  TlsSession(ServerShard& owner, asio::ip::tcp::socket socket, asio::ip::tcp::endpoint remote, asio::ssl::context& ctx)
      : Session(owner, std::move(remote)), stream_(std::move(socket), ctx) {}

  void start() {
    self_ = shared_from_this();
    asio::error_code ec;
    stream_.lowest_layer().set_option(asio::ip::tcp::no_delay(true), ec);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this(), this](const asio::error_code& e) {
                              if (state_ == State::closed) return;
                              if (e) {
                                ShardCounters::add(owner_.rejected, 1);
                                finish();
                                return;
                              }
                              start_reading();
                            });
  }

  void flush() override {
    if (waiting_writable_ || state_ == State::closed || queue_.empty()) return;
    iovec iov[64];
    const std::size_t n = queue_.gather(iov, 64, options_.max_write_bytes);
    // Replayed history carries its original stamp: not a publish-to-write sample.
    const std::int64_t first_published =
        published_ns_of(queue_.front_unstarted()) >= replayed_until_ns_ ? published_ns_of(queue_.front_unstarted()) : 0;
    out_.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const auto* p = static_cast<const std::byte*>(iov[i].iov_base);
      out_.insert(out_.end(), p, p + iov[i].iov_len);
    }
    queue_.consume(out_.size());  // copied: the queue may drop or conflate the rest meanwhile
    waiting_writable_ = true;
    write_blocked_since_ = std::chrono::steady_clock::now();
    asio::async_write(stream_, asio::buffer(out_),
                      [self = shared_from_this(), this, first_published](const asio::error_code& ec, std::size_t) {
                        waiting_writable_ = false;
                        if (state_ == State::closed) return;
                        if (ec) {
                          finish();
                          return;
                        }
                        ShardCounters::add(shard_.counters.writes, 1);
                        sample_write(shard_.counters, first_published);
                        if (out_.capacity() > 64 * 1024) out_ = {};
                        on_written(0);
                        if (state_ != State::closed) flush();
                      });
  }

 protected:
  void start_reading() override {
    if (!in_) in_ = std::make_unique<std::byte[]>(k_read_size);
    stream_.async_read_some(asio::buffer(in_.get(), k_read_size),
                            [self = shared_from_this(), this](const asio::error_code& ec, std::size_t n) {
                              if (state_ == State::closed) return;
                              if (ec) {
                                on_read_end();
                                return;
                              }
                              if (!on_bytes({in_.get(), n})) return;
                              if (state_ != State::closed) start_reading();
                            });
  }

  void close_transport() override {
    asio::error_code ec;
    stream_.lowest_layer().close(ec);
  }

  void shutdown_send() override {}  // the peer's close reply or close_timeout ends the session

 private:
  static constexpr std::size_t k_read_size = 4096;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  std::unique_ptr<std::byte[]> in_;
  std::vector<std::byte> out_;
};

}  // namespace

std::shared_ptr<Session> make_tls_session(ServerShard& owner, ShardSocket socket) {
  asio::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  auto& ctx = *static_cast<asio::ssl::context*>(owner.server.tls_context());
  auto s = std::make_shared<TlsSession>(owner, asio::ip::tcp::socket(std::move(socket)), remote, ctx);
  owner.add(s.get());
  s->start();
  return s;
}

}  // namespace detail
}  // namespace fanout

#else

namespace fanout::detail {
std::shared_ptr<Session> make_tls_session(ServerShard&, ShardSocket) { return nullptr; }
}  // namespace fanout::detail

#endif

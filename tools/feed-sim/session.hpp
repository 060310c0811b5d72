// fanout-feed-sim: one client connection.
#pragma once

#include <wslay/wslay.h>

#include <array>
#include <deque>
#include <unordered_set>

#include "core.hpp"

namespace fanout::sim::detail {

// One client connection: TLS (optional), HTTP upgrade, then wslay parses what the client sends
// (masking, fragmentation, control frames, close handshake) while frames we send are encoded here
// and queued by reference; wslay's own output (pongs, close) joins the same queue through its
// send callback, which never blocks.
class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class State { handshaking, open, closing, closed };

  Session(Core& sim, tcp::socket socket, std::uint64_t id);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::uint64_t id() const { return id_; }
  bool is_open() const { return state_ == State::open; }
  const std::string& conn_id() const { return conn_id_; }
  std::unordered_set<std::string>& subscriptions() { return subscriptions_; }

  void start();

  // A data message: the encoding this connection negotiated, shared with every other subscriber.
  void deliver(Message& m);

  // Acks, errors, pong: nothing while silent.
  void send_control(std::string_view payload);
  // Any text message, and raw bytes (garbage frames), silent or not.
  void send_text(std::string_view payload);
  void send_raw(Bytes b);

  // Silent mode just ended: release what wslay held back (pongs, at least).
  void unsilence();

  // TCP reset: no close frame, no close_notify.
  void abort() { close_socket(true); }

 private:
  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(socket_);
  }
  tcp::socket::lowest_layer_type& lowest() { return tls_ ? tls_->lowest_layer() : socket_.lowest_layer(); }

  void close_socket(bool reset);

  // ---- handshake

  void read_head();
  void on_head(error_code ec, std::size_t n);
  void reply_and_close(std::string response);
  void open();

  // ---- reading

  void read_more();
  void feed();
  static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t* buf, size_t len, int, void* user);
  static ssize_t send_cb(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user);
  static void msg_cb(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user);
  void on_message(const wslay_event_on_msg_recv_arg& m);

  // ---- requests

  void error_reply(std::string_view request, std::string_view why);
  void handle_request(std::string_view text);

  // ---- writing

  void enqueue(Bytes b);
  void flush_wslay(bool closing = false);
  void begin_close();
  void write_more();
  void on_write(error_code ec, std::size_t n);

  Core& sim_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  std::uint64_t id_;
  std::string conn_id_;
  State state_ = State::handshaking;
  asio::steady_timer timer_, delay_timer_;
  std::string head_, pending_input_, response_;
  int window_bits_ = 0;  // permessage-deflate negotiated when nonzero
  wslay_event_context_ptr ctx_ = nullptr;
  std::array<char, 16384> rbuf_{};
  std::string_view in_;  // bytes wslay has not consumed yet
  std::uint16_t failure_code_ = 0;
  std::deque<Bytes> out_;
  std::size_t out_bytes_ = 0;
  std::vector<asio::const_buffer> gather_;
  std::size_t in_flight_ = 0;
  bool writing_ = false;
  std::unordered_set<std::string> subscriptions_;  // stream keys
};

}  // namespace fanout::sim::detail

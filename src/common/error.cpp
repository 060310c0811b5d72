#include "fanout/error.hpp"

#include <string>

namespace fanout {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fanout"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::bad_request: return "malformed HTTP request";
      case Errc::request_too_large: return "HTTP request head too large";
      case Errc::handshake_timeout: return "handshake timed out";
      case Errc::not_found: return "path not found";
      case Errc::method_not_allowed: return "method not allowed";
      case Errc::upgrade_required: return "WebSocket upgrade required";
      case Errc::protocol_error: return "WebSocket protocol error";
      case Errc::invalid_utf8: return "text message is not valid UTF-8";
      case Errc::message_too_big: return "message too big";
      case Errc::slow_consumer: return "slow consumer disconnected";
      case Errc::idle_timeout: return "idle timeout";
      case Errc::shutting_down: return "server shutting down";
      case Errc::connect_timeout: return "upstream connect timed out";
      case Errc::handshake_rejected: return "upstream refused the WebSocket upgrade";
      case Errc::bad_handshake_response: return "upstream sent an invalid upgrade response";
      case Errc::stale_stream: return "upstream stale: no message within stale_timeout";
      case Errc::upstream_closed: return "upstream closed the connection";
      case Errc::inflate_error: return "upstream sent a message that does not inflate";
      case Errc::max_attempts_reached: return "upstream gave up: max_reconnect_attempts reached";
    }
    return "unknown fanout error";
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const Category instance;
  return instance;
}

}  // namespace fanout

#include "fanout/error.hpp"

#include <string>

namespace fanout {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fanout"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::protocol_error: return "WebSocket protocol error";
      case Errc::message_too_big: return "message too big";
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

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

// fanout/error.hpp — the error codes fanout reports, with a std::error_category of their own.
#pragma once

#include <cstdint>
#include <system_error>

#include "fanout/export.hpp"

namespace fanout {

/// WebSocket close codes (RFC 6455 section 7.4.1) that fanout sends.
enum class CloseCode : std::uint16_t {
  normal = 1000,
  going_away = 1001,      // server shutdown / drain
  protocol_error = 1002,  // malformed frame, unmasked client frame, bad close code
  unsupported_data = 1003,
  invalid_payload = 1007,   // text message that is not UTF-8
  policy_violation = 1008,  // slow consumer under the disconnect policy
  message_too_big = 1009,
  internal_error = 1011,
  service_restart = 1012,  // drain: {"reason":"draining","retry_after_ms":N} (docs/protocol.md)
  try_again_later = 1013,  // overload, e.g. the queue budget: {"reason":"overload","retry_after_ms":N}
  // Identity (auth.hpp): application codes, 4000-4999 (RFC 6455 section 7.4.2), after HTTP's 401/403/410.
  unauthorized = 4401,   // no valid token: bad {"op":"auth"}, or none within Auth::auth_timeout
  forbidden = 4403,      // a refresh token for another `sub`
  token_expired = 4410,  // the token's `exp` passed without a refresh
};

/// Errors of the network and protocol layer. Reported through std::error_code.
enum class Errc {
  // WebSocket framing, wherever fanout reads frames.
  protocol_error = 1,  // a frame or message that breaks RFC 6455
  message_too_big,     // over the reader's max_message_bytes
  // The upstream client (Upstream::Event::error, Stats::last_error). Network failures (refused,
  // reset, TLS) arrive as the system's or asio's own codes; these are the ones fanout decides.
  connect_timeout,         // TCP + TLS + upgrade took longer than connect_timeout
  handshake_rejected,      // the server answered the upgrade with a status other than 101
  bad_handshake_response,  // 101, but a wrong Sec-WebSocket-Accept or an extension not offered
  stale_stream,            // no message for stale_timeout
  upstream_closed,         // the server closed the connection (close frame or end of stream)
  inflate_error,           // a compressed message did not inflate (corrupt, or over max_message_bytes)
  max_attempts_reached,    // max_reconnect_attempts failures in a row: the client stopped
};

/// The "fanout" category: `std::error_code ec = fanout::Errc::stale_stream;` works, and compares equal.
FANOUT_API const std::error_category& category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), category()}; }

}  // namespace fanout

template <>
struct std::is_error_code_enum<fanout::Errc> : std::true_type {};

// fanout/session_state.hpp — the life of a downstream connection (Session::State), in a header of
// its own so the engine core can read it without the network layer.
#pragma once

#include <cstdint>

namespace fanout {

enum class SessionState : std::uint8_t {
  handshake,  // reading the HTTP request head
  open,       // a WebSocket: receives what it subscribed to
  closing,    // our close frame is queued or sent; waiting for the peer's, or the close timeout
  closed,     // gone from every topic; the socket is closed
};

}  // namespace fanout

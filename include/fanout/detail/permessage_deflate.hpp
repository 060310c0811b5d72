// fanout/detail/permessage_deflate.hpp — the server's side of RFC 7692 negotiation: which of the
// client's Sec-WebSocket-Extensions offers it accepts, and what it answers.
//
//   if (auto answer = detail::negotiate_permessage_deflate(offers); !answer.empty())
//     head += "Sec-WebSocket-Extensions: " + answer + "\r\n";
//
// The answer always carries server_no_context_takeover (so one compressed frame per message serves
// every client) and client_no_context_takeover (so reading a client needs no per-client inflate
// window); docs/protocol.md, "Compression". An offer with an unknown, duplicate, malformed or
// out-of-range parameter is declined (RFC 7692 5.1), and the next offer considered.
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace fanout::detail {

/// The Sec-WebSocket-Extensions response for `offers` (every value of the request's header, joined
/// with commas), or empty when no permessage-deflate offer is acceptable.
std::string negotiate_permessage_deflate(std::string_view offers);

}  // namespace fanout::detail

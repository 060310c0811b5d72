// What a client asks for, and the text we echo back to it. Requests are parsed with simdjson:
//   {"op":"subscribe"|"unsubscribe","args":[{"channel":"tickers","instId":"BTC-USDT"},...],"id":"..."}
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fanout::sim::detail {

struct ClientRequest {
  std::string op;                                         // "subscribe" or "unsubscribe"
  std::vector<std::pair<std::string, std::string>> args;  // (channel, instId), each a valid_name
  std::string id;                                         // empty unless given and a valid_name
};

// Parses one text message; on failure returns false with `why` set (echoed to the client).
// Not "ping": the caller answers that before parsing. Call from one thread per simulator.
bool parse_client_request(std::string_view text, ClientRequest& out, std::string& why);

// Names we put into JSON unescaped: printable ASCII without quote or backslash, at most 64 bytes.
bool valid_name(std::string_view s);

// Client text echoed back in error messages: JSON-escaped, ASCII only (so our frame is valid UTF-8
// whatever the client sent), truncated to `limit` bytes.
std::string echo_escape(std::string_view in, std::size_t limit = 256);

}  // namespace fanout::sim::detail

// The HTTP side of a connection: the request head, the WebSocket upgrade (RFC 6455 section 4, with
// OpenSSL's SHA-1) and permessage-deflate negotiation (RFC 7692), and the plain HTTP answers.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fanout::sim::detail {

struct Request {
  std::string method, target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  // Repeated headers joined with ", ", as HTTP allows for list-valued ones.
  std::string header(std::string_view name) const;
};

// A request head up to and including its blank line; false when it is not HTTP/1.x.
bool parse_request(std::string_view head, Request& req);
// Whether a comma-separated header value holds `token` (lower case), case-insensitively.
bool has_token(std::string_view list, std::string_view token);
// Sec-WebSocket-Accept for a client's key: base64(SHA-1(key + GUID)).
std::string websocket_accept(std::string_view key);
// Returns the window bits to compress with (0: no acceptable offer) and the response header value.
int negotiate_deflate(std::string_view offers, std::string& response);
// A complete response that closes the connection; `status` is "200 OK" and the like.
std::string http_response(std::string_view status, std::string_view content_type, std::string_view body,
                          std::string_view extra = {});

}  // namespace fanout::sim::detail

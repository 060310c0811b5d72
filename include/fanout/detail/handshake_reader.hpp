// fanout/detail/handshake_reader.hpp — the HTTP side of a downstream connection, with no socket:
// bytes in, a decision out. The session acts on it (writes the answer, upgrades, serves a route).
//
//   HandshakeReader reader(8192, 0, paths);
//   auto d = reader.feed(bytes);  // need_more, upgrade, plain (a request for another path) or answer
//
// Thread safety: one reader per connection, used on that connection's shard only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fanout/http.hpp"

namespace fanout::detail {

class HandshakeReader {
 public:
  enum class Kind : std::uint8_t {
    need_more,  // the head is not complete yet
    upgrade,    // a valid WebSocket upgrade on a WebSocket path: request() holds it
    plain,      // a complete request for another path (routes, /healthz): request() holds it
    answer,     // refused: answer() says how; the connection closes after it
  };
  /// A refusal the reader decided on its own (static strings).
  struct Answer {
    int status = 0;
    std::string_view reason;
    std::string_view extra_headers;  // lines ending in \r\n
    std::string_view body;
  };
  struct Decision {
    Kind kind = Kind::need_more;
    std::size_t consumed = 0;  // for upgrade and plain: where the bytes after the request begin
    Answer answer{};
    bool send_continue = false;  // need_more: the head asked Expect: 100-continue; write "100 Continue" now
  };

  /// `websocket_paths` must outlive the reader. `max_body_bytes` 0: no request may have a body.
  HandshakeReader(std::size_t max_head_bytes, std::size_t max_body_bytes,
                  std::span<const std::string> websocket_paths) noexcept;
  ~HandshakeReader();
  HandshakeReader(const HandshakeReader&) = delete;
  HandshakeReader& operator=(const HandshakeReader&) = delete;

  /// Reads more of the current request (head, then body). After upgrade, plain or answer, the next feed starts a
  /// new request (keep-alive, pipelining).
  Decision feed(std::span<const std::byte> data);
  /// The request of the last upgrade or plain decision, until the next feed or release().
  const HttpRequest& request() const noexcept { return *request_; }
  /// Frees the request's storage (the decision was acted on).
  void release() noexcept;

 private:
  Decision decide(std::size_t consumed) const;

  std::size_t max_head_bytes_;
  std::size_t max_body_bytes_;
  std::span<const std::string> paths_;
  std::unique_ptr<HttpRequest> request_;
  bool decided_ = false;        // request_ is complete: the next feed starts another
  bool continue_sent_ = false;  // this request's 100 Continue was asked for
};

}  // namespace fanout::detail

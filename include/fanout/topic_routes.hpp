// fanout/topic_routes.hpp — HTTP pull of topics, on the WebSocket port: clients that fell far behind
// (or never need a push) read snapshots and history as JSON, and a CDN or nginx in front can cache it.
//
//   GET /topics                               names, members, seq, epoch, rate, history size
//   GET /topics/{t}/snapshot                  latest value per key; ETag "epoch-seq", If-None-Match -> 304
//   GET /topics/{t}/history?since=N&limit=M   messages with seq > N (at most M), oldest first
//
// Topic names are percent-encoded in the path. Bad parameters get 400, unknown topics 404, both with a
// JSON {"error":...}. Server adds these routes unless Server::Options::topic_endpoints is false.
//
// Thread safety: the handlers run on shard threads and only call Hub's thread-safe queries.
#pragma once

#include <chrono>
#include <vector>

#include "fanout/export.hpp"
#include "fanout/http.hpp"

namespace fanout {

class Hub;

struct FANOUT_API TopicRoutesOptions {
  std::chrono::seconds max_age{1};  // Cache-Control: public, max-age=N
  std::size_t max_limit = 1000;     // largest `limit` a history request may ask for
  std::size_t default_limit = 100;  // `limit` when none is given
};

/// The three routes above, for Server::Options::http_routes. `hub` must outlive the server.
FANOUT_API std::vector<HttpRoute> topic_routes(Hub& hub, TopicRoutesOptions options = {});

}  // namespace fanout

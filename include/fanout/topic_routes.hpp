// fanout/topic_routes.hpp — HTTP pull of topics, on the WebSocket port: clients that fell far behind
// (or never need a push) read snapshots and history as JSON, and a CDN or nginx in front can cache it.
//
//   GET /topics/{t}/snapshot                  latest value per key; ETag "epoch-seq", If-None-Match -> 304
//   GET /topics/{t}/history?since=N&limit=M   messages with seq > N (at most M), oldest first
//
// Topic names are percent-encoded in the path. Bad parameters get 400, unknown topics 404, both with a
// JSON {"error":...}. Server adds these routes unless Server::Options::topic_endpoints is false.
// With `auth`, snapshot and history obey the same access rules as a subscribe (auth.hpp): the token
// comes as `Authorization: Bearer` or `?token=`; a missing or refused one gets 401, a denied topic 403
// (checked before the topic is looked up, so a denied client cannot tell which topics exist).
//
// The list of all topics is an operator's view (it names every topic, and its size grows with them),
// so it is a route of its own for an admin listener (the relay's), not added by Server:
//
//   GET /topics?limit=N&after=NAME            a page of topics sorted by name, from a cached snapshot
//
//   admin_options.http_routes.push_back(fanout::topic_list_route(hub));
//
// Thread safety: the handlers run on shard threads and only call Hub's thread-safe queries.
#pragma once

#include <chrono>
#include <memory>
#include <cstddef>
#include <vector>

#include "fanout/auth.hpp"
#include "fanout/export.hpp"
#include "fanout/http.hpp"

namespace fanout {

class Hub;

struct FANOUT_API TopicRoutesOptions {
  std::chrono::seconds max_age{1};     // Cache-Control: public, max-age=N
  std::size_t max_limit = 1000;        // largest `limit` a history request may ask for
  std::size_t default_limit = 100;     // `limit` when none is given
  std::shared_ptr<const Auth> auth{};  // access rules for snapshot and history; null: open
};

/// Snapshot and history, for Server::Options::http_routes. `hub` must outlive the server.
FANOUT_API std::vector<HttpRoute> topic_routes(Hub& hub, TopicRoutesOptions options = {});

/// GET /topics, paginated: {"topics":[{"name","members","seq","epoch","rate","history":{..}}...],
/// "total":N,"as_of_ms":T,"next":NAME|null}, names in byte order. `next` is the `after` of the next
/// page. The list is a snapshot of Hub::topics() taken at most every `refresh` (one request walks
/// the hub, concurrent ones are served the previous snapshot), so a client cannot make the shards
/// walk 100,000 topics per request, and a page is bounded in entries and bytes, so neither can it
/// make the server hold megabytes per pipelined request.
struct FANOUT_API TopicListOptions {
  std::size_t default_limit = 100;          // entries per page when `limit` is not given
  std::size_t max_limit = 1000;             // largest `limit` accepted (larger: 400)
  std::size_t max_page_bytes = 256 * 1024;  // a page ends early past this many bytes of JSON
  std::chrono::milliseconds refresh{1000};  // age of the snapshot before a request retakes it;
                                            // 0: every request walks the hub (tests)
  std::chrono::seconds max_age{0};          // Cache-Control: max-age (0: no-cache)
};
FANOUT_API HttpRoute topic_list_route(Hub& hub, TopicListOptions options = {});

}  // namespace fanout

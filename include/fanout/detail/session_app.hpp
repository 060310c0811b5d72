// fanout/detail/session_app.hpp — what a session holds for the application's callbacks
// (Server::Callbacks::on_connect, on_message, on_rpc). Only sessions that use them carry one (behind
// Session::Custom), and it is freed again when there is nothing left to remember.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fanout/detail/token_bucket.hpp"

namespace fanout::detail {

struct SessionApp {
  using Steady = std::chrono::steady_clock;

  /// An rpc waiting for its answer: the client's id (JSON text) for the timeout's error.
  struct PendingRpc {
    std::uint64_t seq;  // process-unique (RpcReply::Target::seq)
    std::string id;
    Steady::time_point deadline;
  };

  std::string held;              // on_connect deciding: bytes that came behind the request head
  TokenBucket messages;          // Session::Options::messages_per_second
  std::vector<PendingRpc> rpcs;  // oldest first (one timeout for all: deadline order too)
};

/// {"event":"rpc","id":ID,"data":DATA}: `id` and `data` are JSON text.
std::string rpc_result_event(std::string_view id, std::string_view data);
/// {"event":"error","op":"rpc","id":ID,"code":C,"msg":".."}; no "id" when `id` is empty.
std::string rpc_error_event(std::string_view id, int code, std::string_view msg);

}  // namespace fanout::detail

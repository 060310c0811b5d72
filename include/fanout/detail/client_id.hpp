// fanout/detail/client_id.hpp — a Gateway's connection ids: "<node>-<hex of Session::id()>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fanout::detail {

/// A node name a client id may carry: [A-Za-z0-9_.]{1,32} (no '-', so the id splits unambiguously).
bool valid_node_name(std::string_view node) noexcept;
/// "n1-1f" for node "n1" and id 31.
std::string format_client_id(std::string_view node, std::uint64_t session_id);
/// The session id of `client_id` when it names a connection of `node`; nullopt for another node's or
/// a malformed id (lowercase hex, 1 to 16 digits, no leading zero).
std::optional<std::uint64_t> parse_client_id(std::string_view node, std::string_view client_id) noexcept;

}  // namespace fanout::detail

// FANOUT_* environment variables: any key of the relay's plain tables, set without editing the file.
//
// The rule, once: FANOUT_ + the table's name + _ + the key, uppercased; a top-level key has no table.
//   [server] listen -> FANOUT_SERVER_LISTEN      [log] level -> FANOUT_LOG_LEVEL
//   [admin] listen  -> FANOUT_ADMIN_LISTEN       role        -> FANOUT_ROLE
// The value is read as a TOML value (`2`, `true`, `["a:1","b:2"]`), and as a string when it is not
// one (`127.0.0.1:9000`, `info`). Precedence: defaults < file < environment < flags. A listen
// address set here replaces the file's listeners of that kind (plain or TLS), as a flag does.
// [[upstream]], [[sink]] and [[acl]] entries are not reachable this way.
#pragma once

#include <string>
#include <vector>

#include "config.hpp"

namespace relay {

/// The variable that sets `key`.
std::string env_name(const SettableKey& key);

/// Applies every FANOUT_* of `env` (NAME=VALUE strings) to `c`. An unknown name is a warning in
/// c.warnings naming the nearest valid one; a bad value throws std::runtime_error naming the variable.
void apply_env(const std::vector<std::string>& env, Config& c);

/// This process's environment, as NAME=VALUE strings.
std::vector<std::string> process_environment();

}  // namespace relay

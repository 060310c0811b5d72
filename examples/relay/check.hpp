// --check: everything start would meet, found before starting, each problem on a line of its own
// naming the key: listen addresses (bound and released), TLS files (loaded, key matching the
// certificate), upstream URLs, the Redis address, sink paths, CA files.
#pragma once

#include <string>
#include <vector>

#include "config.hpp"

namespace relay {

/// The problems of a configuration that load() accepted; empty when start would succeed as far as
/// can be told without starting (an upstream that is down is not a problem: the relay retries).
std::vector<std::string> find_problems(const Config& c);

/// "configuration ok: 1 listener(s), ..." after find_problems found none.
std::string check_summary(const Config& c);

}  // namespace relay

// fanout/redact.hpp — credentials out of what is shown: URLs and text for logs, status pages and
// metrics. Upstream URLs often carry them (ws://user:pass@host, wss://host/ws?apiKey=...&signature=...).
//
//   fanout::redact_url("wss://bob:hunter2@ex.com/ws?apiKey=k1&depth=5")
//     -> "wss://***@ex.com/ws?apiKey=***&depth=5"
//   fanout::redact_text("connect to ws://u:p@h/x failed; password=pw host=db")
//     -> "connect to ws://***@h/x failed; password=*** host=db"
//
// What is redacted: a URL's userinfo (everything before '@' in the authority), and the value of every
// query parameter (and, in text, every name=value pair) whose name is sensitive: after lowercasing and
// dropping '-', '_' and '.', it is one of k_sensitive_names or contains one of k_sensitive_parts.
// What cannot be seen is not redacted: a secret inside a URL's path (wss://h/feed/<key>) stays.
//
// Thread safety: free functions without shared state.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "fanout/export.hpp"

namespace fanout {

/// What replaces a secret.
inline constexpr std::string_view k_redacted = "***";
/// Parameter names that are credentials as a whole word (normalized: lowercase, no '-', '_' or '.').
inline constexpr std::array<std::string_view, 9> k_sensitive_names = {"key",     "sig",       "sign", "auth", "pass",
                                                                      "session", "sessionid", "jwt",  "pwd"};
/// Parts that make a parameter name a credential wherever they appear in it (apiKey, client_secret,
/// access_token, X-Amz-Signature, passphrase...).
inline constexpr std::array<std::string_view, 10> k_sensitive_parts = {
    "secret",    "token",  "password",   "passwd",     "passphrase",
    "signature", "apikey", "credential", "privatekey", "authorization"};

/// True when a parameter called `name` holds a credential (see above).
FANOUT_API bool is_sensitive_name(std::string_view name) noexcept;
/// `url` with its userinfo and sensitive query values replaced by k_redacted; anything that is not a
/// URL comes back with only its sensitive name=value pairs redacted.
FANOUT_API std::string redact_url(std::string_view url);
/// `text` with every URL in it (scheme://...) redacted as redact_url does, and every name=value
/// whose name is sensitive. For log lines and error messages that may quote a URL or a conninfo.
FANOUT_API std::string redact_text(std::string_view text);

}  // namespace fanout

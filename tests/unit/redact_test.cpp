#include <doctest/doctest.h>

#include <fanout/redact.hpp>

using fanout::is_sensitive_name;
using fanout::redact_text;
using fanout::redact_url;

TEST_CASE("redact: sensitive parameter names, case- and separator-insensitive") {
  for (auto n :
       {"apiKey", "APIKEY", "api_key", "api-key", "key", "token", "access_token", "X-Amz-Signature", "signature", "sig",
        "secret", "client_secret", "password", "passwd", "passphrase", "auth", "X-Amz-Credential", "jwt", "session"})
    CHECK_MESSAGE(is_sensitive_name(n), n);
  for (auto n : {"depth", "instId", "channel", "keyboard", "monkey", "v", "", "compress"})
    CHECK_MESSAGE(!is_sensitive_name(n), n);
}

TEST_CASE("redact: a URL's userinfo and sensitive query values") {
  CHECK(redact_url("ws://user:hunter2@feed.example:9000/ws?apiKey=abc&depth=5") ==
        "ws://***@feed.example:9000/ws?apiKey=***&depth=5");
  CHECK(redact_url("wss://ex.com/ws?depth=5&TOKEN=t1;signature=s#frag") ==
        "wss://ex.com/ws?depth=5&TOKEN=***;signature=***#frag");
  CHECK(redact_url("wss://ex.com/ws/v5/public") == "wss://ex.com/ws/v5/public");
  CHECK(redact_url("wss://a@b@ex.com?x=1") == "wss://***@ex.com?x=1");
  CHECK(redact_url("wss://ex.com/p@th?key") == "wss://ex.com/p@th?key");  // '@' in the path is not userinfo
  CHECK(redact_url("ws://[::1]:80/?password=") == "ws://[::1]:80/?password=***");
  CHECK(redact_url("") == "");
}

TEST_CASE("redact: URLs and name=value pairs inside text") {
  CHECK(redact_text("connecting to ws://u:p@h:1/x?key=k (try 2)") == "connecting to ws://***@h:1/x?key=*** (try 2)");
  CHECK(redact_text("'wss://h/?secret=s' and \"redis://:pw@r:6379\"") ==
        "'wss://h/?secret=***' and \"redis://***@r:6379\"");
  CHECK(redact_text("host=db user=me password=pw dbname=x") == "host=db user=me password=*** dbname=x");
  CHECK(redact_text("stats: clients 3 topics 4 key_count=2") == "stats: clients 3 topics 4 key_count=2");
  CHECK(redact_text("a://") == "a://");
  CHECK(redact_text("://x@y") == "://***@y");
}

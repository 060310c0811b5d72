#include <doctest/doctest.h>

#include <fanout/connect.hpp>

using fanout::ConnectRequest;

namespace {
ConnectRequest request(std::vector<std::pair<std::string, std::string>> headers, std::string query = {}) {
  ConnectRequest r;
  r.headers = std::move(headers);
  r.query = std::move(query);
  return r;
}
}  // namespace

TEST_CASE("ConnectRequest::header: first value, case-insensitive name") {
  const auto r = request({{"X-Tenant", "a"}, {"x-tenant", "b"}, {"Host", "h"}});
  CHECK(r.header("x-TENANT") == "a");
  CHECK(r.header("host") == "h");
  CHECK_FALSE(r.header("X-Missing"));
  CHECK_FALSE(r.header("X-Tenan"));
}

TEST_CASE("ConnectRequest::cookie: pairs, spaces, quotes, several Cookie headers") {
  const auto r =
      request({{"Cookie", "a=1; sid=abc ;  theme=\"dark\""}, {"cookie", "late=2;sid=second"}, {"X", "sid=no"}});
  CHECK(r.cookie("a") == "1");
  CHECK(r.cookie("sid") == "abc");  // the first one wins
  CHECK(r.cookie("theme") == "dark");
  CHECK(r.cookie("late") == "2");
  CHECK_FALSE(r.cookie("Sid"));  // names are exact
  CHECK_FALSE(r.cookie("the"));
  CHECK_FALSE(request({{"Cookie", "novalue; =x; ;"}}).cookie("novalue"));
  CHECK(request({{"Cookie", "e="}}).cookie("e") == "");
  CHECK_FALSE(request({}).cookie("a"));
}

TEST_CASE("ConnectRequest::query_param: URL-decoded, first match, malformed escapes refused") {
  const auto r = request({}, "room=a%20b&uid=u+1&room=second&empty=&flag&bad=%zz");
  CHECK(r.query_param("room") == "a b");
  CHECK(r.query_param("uid") == "u 1");
  CHECK(r.query_param("empty") == "");
  CHECK(r.query_param("flag") == "");
  CHECK_FALSE(r.query_param("bad"));
  CHECK_FALSE(r.query_param("missing"));
  CHECK_FALSE(r.query_param("roo"));
}

TEST_CASE("ConnectDecision: accepted and refused") {
  const auto a = fanout::ConnectDecision::accepted("u1", {"t1"});
  CHECK(a.accept);
  CHECK(a.user_id == "u1");
  CHECK(a.topics == std::vector<std::string>{"t1"});
  const auto r = fanout::ConnectDecision::refused(401, "who?");
  CHECK_FALSE(r.accept);
  CHECK(r.http_status == 401);
  CHECK(r.reason == "who?");
}

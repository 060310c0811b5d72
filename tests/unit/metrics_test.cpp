// Metrics: per-shard cells, histograms, the registry, the Prometheus text format, and the library's
// own metrics scraped from a running server over a real socket.
#include <doctest/doctest.h>

#include <fanout/fanout.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string http_get(std::uint16_t port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return got;
}

// The value of the sample line that starts with `series` followed by a space; NaN when absent.
double sample(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    ++at;
  }
  return std::nan("");
}

template <class F>
bool wait_for(F f) {
  for (int i = 0; i < 1000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

}  // namespace

TEST_CASE("a sharded counter sums cells written by their own threads") {
  fanout::ShardedCounter c(4);
  std::vector<std::thread> writers;
  for (std::size_t s = 0; s < 4; ++s)
    writers.emplace_back([&c, s] {
      for (int i = 0; i < 100000; ++i) c.add(s, s + 1);
    });
  for (auto& t : writers) t.join();
  CHECK(c.value() == 100000u * (1 + 2 + 3 + 4));
}

TEST_CASE("histogram: bucket placement, sum, merge and bad bounds") {
  fanout::Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 5.0, 6.0, 100.0}) h.observe(v);
  auto s = h.snapshot();
  CHECK(s.counts == std::vector<std::uint64_t>{2, 2, 2, 2});  // <=1, <=2, <=5, above
  CHECK(s.count() == 8);
  CHECK(s.sum == doctest::Approx(120.0));

  fanout::ShardedHistogram sh(3, {1, 2, 5});
  sh.observe(0, 0.1);
  sh.observe(1, 3);
  sh.observe(2, 30);
  sh.observe(2, 2);
  auto m = sh.snapshot();
  CHECK(m.counts == std::vector<std::uint64_t>{1, 1, 1, 1});
  CHECK(m.sum == doctest::Approx(35.1));

  fanout::Histogram::Snapshot other;
  other.bounds = {1, 3};
  other.counts = {0, 0, 0};
  CHECK_THROWS_AS(m.merge(other), std::invalid_argument);
  CHECK_THROWS_AS(fanout::Histogram({}), std::invalid_argument);
  CHECK_THROWS_AS(fanout::Histogram({2, 1}), std::invalid_argument);
  CHECK_THROWS_AS(fanout::Histogram({1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(fanout::Histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
}

TEST_CASE("the registry renders the Prometheus text format byte for byte") {
  fanout::MetricsRegistry r;
  double queue = 7;
  fanout::ShardedCounter sent(2);
  sent.add(0, 3);
  sent.add(1, 4);
  fanout::ShardedHistogram lat(1, {0.001, 0.01});
  lat.observe(0, 0.0005);
  lat.observe(0, 0.005);
  lat.observe(0, 0.5);
  auto a = r.add_gauge("zz_queue_depth", "Queue\\depth\nnow", {{"sink", "a\"b\\c\nd"}, {"kind", "pg"}},
                       [&] { return queue; });
  auto b = r.add_counter("aa_sent_total", "Sent", {}, sent);
  auto c = r.add_histogram("mm_lag_seconds", "Lag", {{"sink", "j"}}, lat);
  auto d = r.add_gauge("zz_queue_depth", "ignored: the first help wins", {{"sink", "b"}}, [] { return 0.25; });
  auto e = r.add_gauge("nn_special", "Special values", {{"v", "nan"}}, [] { return std::nan(""); });
  auto f = r.add_gauge("nn_special", "Special values", {{"v", "inf"}},
                       [] { return std::numeric_limits<double>::infinity(); });
  CHECK(r.size() == 6);
  const std::string expected =
      "# HELP aa_sent_total Sent\n"
      "# TYPE aa_sent_total counter\n"
      "aa_sent_total 7\n"
      "# HELP mm_lag_seconds Lag\n"
      "# TYPE mm_lag_seconds histogram\n"
      "mm_lag_seconds_bucket{sink=\"j\",le=\"0.001\"} 1\n"
      "mm_lag_seconds_bucket{sink=\"j\",le=\"0.01\"} 2\n"
      "mm_lag_seconds_bucket{sink=\"j\",le=\"+Inf\"} 3\n"
      "mm_lag_seconds_sum{sink=\"j\"} 0.5055\n"
      "mm_lag_seconds_count{sink=\"j\"} 3\n"
      "# HELP nn_special Special values\n"
      "# TYPE nn_special gauge\n"
      "nn_special{v=\"nan\"} NaN\n"
      "nn_special{v=\"inf\"} +Inf\n"
      "# HELP zz_queue_depth Queue\\\\depth\\nnow\n"
      "# TYPE zz_queue_depth gauge\n"
      "zz_queue_depth{kind=\"pg\",sink=\"a\\\"b\\\\c\\nd\"} 7\n"
      "zz_queue_depth{sink=\"b\"} 0.25\n";
  CHECK(r.render() == expected);

  // Values are read at scrape time.
  queue = 9;
  sent.add(1, 1);
  const auto again = r.render();
  CHECK(sample(again, "aa_sent_total") == 8);
  CHECK(sample(again, "zz_queue_depth{kind=\"pg\",sink=\"a\\\"b\\\\c\\nd\"}") == 9);
}

TEST_CASE("label values that are not UTF-8 are rendered with U+FFFD") {
  fanout::MetricsRegistry r;
  auto g = r.add_gauge("g", "h", {{"topic", "ok-\xC3\xA9-\xFF-\xE2\x82"}}, [] { return 1.0; });
  CHECK(r.render() == "# HELP g h\n# TYPE g gauge\ng{topic=\"ok-\xC3\xA9-\xEF\xBF\xBD-\xEF\xBF\xBD\xEF\xBF\xBD\"} 1\n");
}

TEST_CASE("registrations remove their series; the registry may go first") {
  auto r = std::make_unique<fanout::MetricsRegistry>();
  auto a = r->add_gauge("g", "help", {{"x", "1"}}, [] { return 1.0; });
  {
    auto b = r->add_gauge("g", "help", {{"x", "2"}}, [] { return 2.0; });
    CHECK(r->render().find("g{x=\"2\"} 2\n") != std::string::npos);
  }
  CHECK(r->render().find("g{x=\"2\"}") == std::string::npos);
  CHECK(r->render().find("g{x=\"1\"} 1\n") != std::string::npos);
  fanout::MetricsRegistry::Registration moved = std::move(a);
  CHECK_FALSE(a);
  CHECK(moved);
  moved.reset();
  CHECK(r->render().empty());  // the family went with its last series
  auto late = r->add_counter("c_total", "help", {}, [] { return 1.0; });
  r.reset();
  late.reset();  // after the registry: nothing to do, no crash
}

TEST_CASE("bad names, clashing types and repeated label sets are refused at registration") {
  fanout::MetricsRegistry r;
  auto one = [] { return 1.0; };
  CHECK_THROWS_AS((void)r.add_gauge("", "h", {}, one), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_gauge("9lives", "h", {}, one), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_gauge("has-dash", "h", {}, one), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_gauge("g", "h", {{"__reserved", "x"}}, one), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_gauge("g", "h", {{"a b", "x"}}, one), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_gauge("g", "h", {{"a", "x"}, {"a", "y"}}, one), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_gauge("g", "h", {}, {}), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_histogram("h", "h", {{"le", "1"}}, [] { return fanout::Histogram({1}).snapshot(); }),
                  std::invalid_argument);
  auto g = r.add_gauge("g", "h", {{"a", "1"}, {"b", "2"}}, one);
  CHECK_THROWS_AS((void)r.add_counter("g", "h", {{"a", "3"}}, one), std::invalid_argument);
  CHECK_THROWS_AS((void)r.add_gauge("g", "h", {{"b", "2"}, {"a", "1"}}, one), std::invalid_argument);  // same set
  CHECK_THROWS_AS((void)r.add_family("hh", "h", fanout::MetricsRegistry::Type::histogram, {}), std::invalid_argument);
  auto malformed = r.add_histogram("lat", "h", {}, [] {
    fanout::Histogram::Snapshot s;
    s.bounds = {1, 2};
    s.counts = {1};  // should be 3: left out of the output rather than rendered broken
    return s;
  });
  CHECK(r.render().find("lat_") == std::string::npos);
  malformed.reset();
  CHECK(r.size() == 1);
  CHECK(r.render() == "# HELP g h\n# TYPE g gauge\ng{a=\"1\",b=\"2\"} 1\n");
}

TEST_CASE("a family's series come from its callback at each scrape, deduplicated") {
  fanout::MetricsRegistry r;
  std::vector<fanout::MetricsRegistry::Sample> now{{{{"topic", "a"}}, 1}, {{{"topic", "b"}}, 2}};
  auto fixed = r.add_counter("msgs_total", "Messages", {{"topic", "a"}}, [] { return 10.0; });
  auto fam = r.add_family("msgs_total", "Messages", fanout::MetricsRegistry::Type::counter, [&] {
    auto out = now;
    out.push_back({{{"topic", "b"}}, 99});    // repeated: the first wins
    out.push_back({{{"bad name", "x"}}, 5});  // invalid label name: left out
    return out;
  });
  CHECK(r.render() ==
        "# HELP msgs_total Messages\n# TYPE msgs_total counter\n"
        "msgs_total{topic=\"a\"} 10\nmsgs_total{topic=\"b\"} 2\n");
  now.push_back({{{"topic", "c"}}, 3});
  CHECK(sample(r.render(), "msgs_total{topic=\"c\"}") == 3);
}

TEST_CASE("GET /metrics on a running server reports what the clients and publishes did") {
  fanout::Runtime rt({.shards = 2});
  fanout::Hub hub(rt);
  fanout::MetricsRegistry registry;
  fanout::Server::Options o;
  o.port = 0;
  o.http_routes.push_back(fanout::metrics_route(registry));
  fanout::Server server(rt, hub, o);
  auto regs = fanout::add_server_metrics(registry, server, hub);
  rt.start();
  hub.declare("t");  // clients join topics that exist
  hub.declare("u");

  // Three WebSocket clients on "t" (the kernel spreads them over the two shards), one also on "u".
  std::vector<int> clients;
  for (const char* topics : {"t", "t", "t,u"}) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string req = std::string("GET /ws?subscribe=") + topics +
                            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
    clients.push_back(fd);
  }
  REQUIRE(wait_for([&] { return hub.subscriber_count("t") == 3 && hub.subscriber_count("u") == 1; }));
  for (int i = 0; i < 10; ++i) hub.publish("t", "hello");
  for (int i = 0; i < 5; ++i) hub.publish("u", "world");
  REQUIRE(wait_for([&] { return server.stats().deliveries == 35 && server.stats().writes > 0; }));

  const auto resp = http_get(server.port(), "/metrics");
  REQUIRE(resp.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(resp.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  const auto body = resp.substr(resp.find("\r\n\r\n") + 4);
  CHECK(sample(body, "fanout_connections") == 4);  // three clients and the scrape's own connection
  CHECK(sample(body, "fanout_subscriptions") == 4);
  CHECK(sample(body, "fanout_topics") == 2);
  CHECK(sample(body, "fanout_topics_with_subscribers") == 2);
  CHECK(sample(body, "fanout_published_total") == 15);
  CHECK(sample(body, "fanout_delivered_total") == 35);
  CHECK(sample(body, "fanout_dropped_total{policy=\"drop_oldest\"}") == 0);
  CHECK(sample(body, "fanout_slow_disconnects_total{reason=\"write_timeout\"}") == 0);
  CHECK(sample(body, "fanout_connections_upgraded_total") == 3);
  CHECK(sample(body, "fanout_gather_writes_total") >= 1);
  const double writes_with_data = sample(body, "fanout_publish_to_write_seconds_count");
  CHECK(writes_with_data >= 1);
  CHECK(writes_with_data <= sample(body, "fanout_gather_writes_total"));
  CHECK(sample(body, "fanout_publish_to_write_seconds_bucket{le=\"+Inf\"}") == writes_with_data);
  CHECK(sample(body, "fanout_publish_to_write_seconds_sum") >= 0);
  for (int fd : clients) ::close(fd);
  regs.clear();
  rt.stop();
}

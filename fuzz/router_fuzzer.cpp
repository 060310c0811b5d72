// The upstream router: a message from an exchange (any bytes) through the JSON field templates.
// The first byte picks one of a few configurations, so templates with keys, seqs, array indexes,
// a default topic and a non-JSON topic are all exercised.
#include <fanout/router.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {
std::array<fanout::Router, 4>& routers() {
  static std::array<fanout::Router, 4> r = {
      fanout::Router(fanout::Router::Options{}),
      fanout::Router(fanout::Router::Options{
          .topic_template = "trades.{data.0.s}", .key_path = "data.0.s", .seq_path = "data.0.t"}),
      fanout::Router(fanout::Router::Options{.topic_template = "{stream}",
                                             .default_topic = "other",
                                             .key_path = "k",
                                             .seq_path = "u",
                                             .control_fields = {"result", "id"},
                                             .heartbeat_texts = {"ping", "pong"},
                                             .non_json_topic = "raw"}),
      fanout::Router(fanout::Router::Options{.topic_template = "{a}{b.c}-{d.0.1}:{e}", .seq_path = "s"}),
  };
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  auto& router = routers()[data[0] % 4];
  fanout::Routed out;
  if (router.route(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), out) ==
          fanout::Router::Result::routed &&
      out.topic.empty())
    std::abort();
  return 0;
}

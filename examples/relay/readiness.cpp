#include "readiness.hpp"

#include <fmt/format.h>

namespace relay {

Readiness::Readiness(std::function<std::string()> why_not) : state_(std::make_shared<State>()) {
  state_->why_not = std::move(why_not);
}

void Readiness::begin_drain() noexcept { state_->draining.store(true, std::memory_order_relaxed); }

fanout::HttpRoute Readiness::route() const {
  return {"/readyz", false, [state = state_](const fanout::HttpRequest&) {
            std::string why = state->draining.load(std::memory_order_relaxed) ? "draining" : state->why_not();
            // The reasons are fixed phrases (no names, addresses or counts): safe on the public listener.
            if (why.empty())
              return fanout::HttpResponse{.content_type = "application/json",
                                          .body = "{\"ready\":true}\n",
                                          .headers = "Cache-Control: no-store\r\n"};
            return fanout::HttpResponse{.status = 503,
                                        .content_type = "application/json",
                                        .body = fmt::format("{{\"ready\":false,\"reason\":\"{}\"}}\n", why),
                                        .headers = "Cache-Control: no-store\r\n"};
          }};
}

}  // namespace relay

#include "fanout/bus.hpp"

#include <string>

#include "fanout/hub.hpp"

namespace fanout {

void Bus::attach(Hub& hub) {
  // The observer runs under the hub's lock: subscribe()/unsubscribe() only queue work for the bus.
  hub.set_activity_observer([this](std::string_view topic, bool active) {
    if (active)
      subscribe(topic);
    else
      unsubscribe(topic);
  });
  set_handler([&hub](const BusMessage& m) { publish_to_hub(hub, m); });
  set_resume_point([&hub](std::string_view topic) { return hub.last_seq(topic); });
  hub.set_topic_directory([this](std::string_view topic) { return knows_topic(topic); });
}

bool Bus::knows_topic(std::string_view) const { return false; }
void Bus::declare_topic(std::string_view) {}

// The one place the bus hands messages to a Hub.
// Every edge publishes a message with the same seq, so a client can resume on any edge with `since`.
void publish_to_hub(Hub& hub, const BusMessage& m) {
  hub.publish(m.topic, m.payload, Hub::PublishOptions{.key = m.key, .seq = m.seq, .op = m.op});
}

}  // namespace fanout

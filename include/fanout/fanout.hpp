// fanout/fanout.hpp — everything: runtime, hub, server, sessions, frames, policies.
#pragma once

#include "fanout/error.hpp"
#include "fanout/frame.hpp"
#include "fanout/http.hpp"
#include "fanout/hub.hpp"
#include "fanout/outbound_queue.hpp"
#include "fanout/policy.hpp"
#include "fanout/runtime.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"
#include "fanout/topic_routes.hpp"

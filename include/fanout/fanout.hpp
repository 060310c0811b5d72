// fanout/fanout.hpp — everything: runtime, hub, server, sessions, frames, policies, metrics.
#pragma once

#include "fanout/error.hpp"
#include "fanout/frame.hpp"
#include "fanout/hub.hpp"
#include "fanout/library_metrics.hpp"
#include "fanout/metrics.hpp"
#include "fanout/outbound_queue.hpp"
#include "fanout/pipeline_metrics.hpp"
#include "fanout/policy.hpp"
#include "fanout/runtime.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"

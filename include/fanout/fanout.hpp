// fanout/fanout.hpp — everything: runtime, hub, server, sessions, frames, policies, processor, sinks,
// metrics. (fanout/postgres_sink.hpp is separate: built with FANOUT_WITH_POSTGRES.)
#pragma once

#include "fanout/error.hpp"
#include "fanout/frame.hpp"
#include "fanout/http.hpp"
#include "fanout/hub.hpp"
#include "fanout/journal_sink.hpp"
#include "fanout/library_metrics.hpp"
#include "fanout/metrics.hpp"
#include "fanout/outbound_queue.hpp"
#include "fanout/pipeline_metrics.hpp"
#include "fanout/policy.hpp"
#include "fanout/processor.hpp"
#include "fanout/runtime.hpp"
#include "fanout/server.hpp"
#include "fanout/session.hpp"
#include "fanout/topic_routes.hpp"
#include "fanout/sink.hpp"

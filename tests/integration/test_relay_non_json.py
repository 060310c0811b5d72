#!/usr/bin/python3
"""fanout-relay and non-JSON upstream frames (issue 15, item 7b): counted, logged, routed.

  /usr/bin/python3 tests/integration/test_relay_non_json.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

One simulator, one relay whose [upstream.route] has default_topic = "misc". The simulator's
`garbage-json` (a text frame that is not JSON) is sent twice. Checks: a client subscribed to "misc"
receives both frames byte-exact (before, non-JSON frames were dropped even with default_topic);
/metrics counts them in fanout_router_non_json_total{upstream="up"} and
fanout_router_messages_total{result="routed"} goes on; the relay logs one warning (rate-limited: the
second frame within 10 s adds no line) naming default_topic; the upstream stays up.
"""

import asyncio
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import WsClient  # noqa: E402
from metrics_testlib import ascrape  # noqa: E402
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, log, run_relay_test,  # noqa: E402
                           subscribe_msg, topic_of, write_file)

STREAMS = [("tickers", "BTC-USDT")]
# What the simulator's garbage-json sends (tools/feed-sim/feed_sim.cpp).
GARBAGE = '{"arg":{"channel":"tickers","instId":"BTC-USDT"},"data":[{"last":"1.0",,}]} not json'


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-nonjson-") as tmp:
        sim = FeedSim(args.sim, rate=20)
        config = write_file(tmp, "nonjson.toml", f"""\
[server]
listen = ["127.0.0.1:0"]

[topics]
declare = ["{topic_of(STREAMS[0])}", "misc"]

[[upstream]]
name = "up"
urls = ["{sim.url}"]
subscribe = ['{subscribe_msg(STREAMS)}']

[upstream.route]
topic = "{ROUTE}"
default_topic = "misc"
""")
        relay = Relay(args.relay, ["--config", config])
        await relay.wait_line(Relay.live_re("up"), what="upstream live")
        await sim.wait_stats(lambda st: st["subscriptions"] == 1, "the relay subscribed")
        client = await WsClient.open(relay.port, "/ws", name="misc-client")
        await client.subscribe("misc")

        async def routed():
            mark = relay.line_count()
            before = (await ascrape(relay.admin_port)).value("fanout_router_non_json_total", upstream="up")
            for i in range(2):
                n = await sim.acommand_count("garbage-json")
                check(n == 1, f"garbage-json went to {n} connections")
                _, m = await client.next_data(10)
                check(m == GARBAGE, f"frame {i + 1} on misc: {m!r}, expected the simulator's bytes {GARBAGE!r}")
            m = await ascrape(relay.admin_port)
            after = m.value("fanout_router_non_json_total", upstream="up")
            check(after - before == 2, f"fanout_router_non_json_total went {before} -> {after}, expected +2")
            check(m.value("fanout_router_messages_total", upstream="up", result="routed") > 0,
                  "fanout_router_messages_total{result=routed} is 0")
            _, line = await relay.wait_line(r"upstream up: \d+ non-JSON message", after=mark,
                                            what="the non-JSON warning")
            log(f"    {line}")
            check("default_topic 'misc'" in line, f"the warning does not say where they went: {line}")
            lines = relay.find_all(r"non-JSON message", after=mark)
            check(len(lines) == 1, f"two frames within 10 s should log one line, logged {len(lines)}: {lines}")
            check(relay.find(Relay.down_re("up"), after=mark) is None, "the upstream went down")
            log(f"    non_json_total +{after - before:.0f}, both frames routed to misc byte-exact")
        await checks.arun("non-JSON frames: routed to default_topic, counted, logged once", routed)
        await client.close()
        relay.require_alive()
    checks.finish()


if __name__ == "__main__":
    run_relay_test("relay_non_json", body)

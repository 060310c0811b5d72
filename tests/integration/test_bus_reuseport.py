#!/usr/bin/python3
"""Three edge processes share one port (SO_REUSEPORT) and serve its clients together.

  /usr/bin/python3 tests/integration/test_bus_reuseport.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

The CI-sized version of the 45,000-client run in docs/scaling.md: three `--role edge` relays listen
on the same 127.0.0.1:PORT; 300 clients connect to that port. Checks: the kernel spread them over all
three processes (each edge's stats line counts some, together 300), and every client receives its
topic with bus seq +1.
"""

import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_testlib import TOPICS, BusClient, Redis, check, edge, free_port, ingest, log, wait_leader  # noqa: E402
from relay_testlib import Checks, FeedSim, run_relay_test  # noqa: E402

CLIENTS = 300


async def body(args):
    checks = Checks()
    redis = Redis()
    sim = FeedSim(args.sim, rate=20)
    leader = ingest(args.relay, redis, sim.url, "ingest")
    await wait_leader([leader])
    port = free_port()
    edges = [edge(args.relay, redis, f"edge-{i}", port=port) for i in (1, 2, 3)]
    check(all(e.port == port for e in edges), f"edges serve on {[e.port for e in edges]}, not all on {port}")

    async def spread():
        clients = []
        for i in range(0, CLIENTS, 50):
            clients += await asyncio.gather(*(BusClient.open(port, [TOPICS[j % 4]], f"client-{j}")
                                              for j in range(i, i + 50)))
        await asyncio.gather(*(c.more_each(5) for c in clients))
        for c in clients:
            c.check_bus_contiguous()
        counts = []
        for e in edges:
            mark = e.line_count()
            _, line = await e.wait_line(r"stats: clients \d+", after=mark, what="a fresh stats line")
            counts.append(int(re.search(r"stats: clients (\d+)", line).group(1)))
        log(f"    clients per edge process: {counts}")
        check(sum(counts) == CLIENTS, f"edges count {counts}, together not {CLIENTS}")
        check(all(n > 0 for n in counts), f"an edge got no client: {counts}")
        await asyncio.gather(*(c.client.close() for c in clients), return_exceptions=True)
    await checks.arun(f"{CLIENTS} clients on one port spread over 3 edge processes, all served", spread)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("bus_reuseport", body, timeout=150)

#!/usr/bin/python3
"""Kill an edge: its clients reconnect (jittered) to the other edges and recover with `since`.

  /usr/bin/python3 tests/integration/test_bus_edge_failover.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Three edges; six clients on edge 1, and a client on each other edge (so they have the topics and
their history). SIGKILL edge 1 and start a fresh edge 4 that follows every topic (subscribe_all:
it reads each topic's recent history from Redis at start). Each client of edge 1 waits a random
0..500 ms, connects to edge 4 (even-numbered clients) or edge 2/3, and subscribes with
since = {topic: last bus seq it got}. Checks: every resubscribe is acknowledged
(not a resync), and per client the bus seq runs +1 across the two connections: the replay from the
new edge's history fills exactly what the client missed. Bus seqs are the same on every edge, which
is what makes this work.
"""

import asyncio
import os
import random
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_testlib import TOPICS, BusClient, Redis, check, edge, ingest, log, wait_leader  # noqa: E402
from relay_testlib import Checks, FeedSim, run_relay_test, write_file  # noqa: E402


async def body(args):
    checks = Checks()
    redis = Redis()
    sim = FeedSim(args.sim, rate=40)
    leader = ingest(args.relay, redis, sim.url, "ingest")
    await wait_leader([leader])
    edges = [edge(args.relay, redis, f"edge-{i}") for i in (1, 2, 3)]
    others = [await BusClient.open(e.port, TOPICS, f"watcher-{e.name}") for e in edges[1:]]
    victims = [await BusClient.open(edges[0].port, TOPICS[i % 4:i % 4 + 2], f"client-{i}") for i in range(6)]
    await asyncio.gather(*(c.more_each(15) for c in victims + others))

    async def failover():
        log(f"    SIGKILL {edges[0].name}")
        edges[0].proc.send_signal(signal.SIGKILL)
        conf = write_file(tempfile.mkdtemp(prefix="fanout-bus-edge-"), "edge4.toml",
                          "[redis]\nsubscribe_all = true\n")
        fresh = edge(args.relay, redis, "edge-4(fresh)", args=["--config", conf])
        await fresh.wait_line(r"redis: prefilled [1-9]\d* topics", what="history read from Redis")
        os.unlink(conf)

        async def reconnect(c: BusClient):
            await c.client.closed.wait()
            c.drain()
            await asyncio.sleep(random.uniform(0, 0.5))  # jitter: not all at once
            target = fresh if int(c.name.split("-")[1]) % 2 == 0 else random.choice(edges[1:])
            since = {t: c.last_seq(t) for t in c.topics}
            n = await BusClient.open(target.port, c.topics, c.name + "'", since=since)
            await n.more_each(10)
            for t in c.topics:  # one history per client across both connections
                n.got[t] = c.got[t] + n.got[t]
            n.check_bus_contiguous()
            n.check_upstream_increasing(contiguous=True)  # the ingest never changed: nothing lost
            log(f"    {c.name}: on {target.name} from {since}, contiguous through "
                f"{ {t: n.last_seq(t) for t in c.topics} }")
            return n
        moved = await asyncio.gather(*(reconnect(c) for c in victims))
        for o in others:
            o.drain()
            o.check_open()
            o.check_bus_contiguous()
        return moved
    moved = await checks.arun("SIGKILL an edge: its clients recover on the others without a gap", failover)
    check(moved is not None and len(moved) == len(victims), "not every client moved")
    await asyncio.gather(*(c.client.close() for c in (moved or []) + others), return_exceptions=True)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("bus_edge_failover", body, timeout=150)

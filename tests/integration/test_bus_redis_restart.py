#!/usr/bin/python3
"""Redis restarts mid-stream: edges keep serving their clients, reconnect, and recover from the stream.

  /usr/bin/python3 tests/integration/test_bus_redis_restart.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Redis runs with an append-only file (the setup docs/scaling.md asks for), so its seq counters and
streams survive the restart. Two edges with envelope clients; redis-server gets SIGTERM and is
started again on the same port a moment later. Checks: no client is disconnected; both edges log the
loss and the reconnect; GET /readyz on each edge's client and admin listener answers 200 before,
503 "bus not connected" while Redis is down and 200 again after; afterwards every client gets new
messages and its bus seq is still +1 per message (what was published while an edge was
resubscribing came from the stream).
"""

import asyncio
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_testlib import TOPICS, BusClient, Redis, check, edge, ingest, log, wait_leader  # noqa: E402
from relay_testlib import Checks, FeedSim, run_relay_test, wait_readyz  # noqa: E402


async def body(args):
    checks = Checks()
    data_dir = tempfile.mkdtemp(prefix="fanout-bus-redis-")
    try:
        redis = Redis(appendonly_dir=data_dir)
        sim = FeedSim(args.sim, rate=40)
        leader = ingest(args.relay, redis, sim.url, "ingest", 3000)
        await wait_leader([leader])
        edges = [edge(args.relay, redis, f"edge-{i}") for i in (1, 2)]
        clients = [await BusClient.open(e.port, TOPICS, f"client-{i + 1}") for i, e in enumerate(edges)]
        await asyncio.gather(*(c.more_each(20) for c in clients))

        async def restart():
            ports = [p for e in edges for p in (e.port, e.admin_port)]  # /readyz on client and admin listeners
            await wait_readyz(ports, 200, None, "edges with Redis")
            marks = [e.line_count() for e in edges]
            log("    SIGTERM redis-server")
            await redis.astop()
            for e, m in zip(edges, marks):
                await e.wait_line(r"redis subscriptions connection down", after=m, what="loss noticed")
            await wait_readyz(ports, 503, "bus not connected", "edges without Redis")
            await asyncio.sleep(1.0)  # clients stay connected meanwhile
            for c in clients:
                c.drain()
                c.check_open()
            for e in edges:
                e.require_alive("while Redis was down")
            log("    redis-server again, same port, same data")
            await redis.astart()
            for e, m in zip(edges, marks):
                await e.wait_line(r"redis subscriptions connection up", after=m, what="reconnected", timeout=30)
            await wait_readyz(ports, 200, None, "edges with Redis again", timeout=30)
            await asyncio.gather(*(c.more_each(30, timeout=40) for c in clients))
            for c in clients:
                c.check_open()
                c.check_bus_contiguous()
                c.check_upstream_increasing(contiguous=False)
            for e in edges:
                _, line = await e.wait_line(r"bus: .* reconnects [1-9]", what="reconnect counted")
                log(f"    {e.name}: {line.split('bus: ')[1]}")
        await checks.arun("restart Redis: clients stay, edges reconnect, bus seq has no gap", restart)

        check(redis.command("PING") == "+PONG", "redis is not answering at the end")
        await asyncio.gather(*(c.client.close() for c in clients), return_exceptions=True)
        checks.finish()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    run_relay_test("bus_redis_restart", body, timeout=150)

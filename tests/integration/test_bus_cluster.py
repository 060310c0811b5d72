#!/usr/bin/python3
"""Two ingest candidates + three edges over a real redis-server: delivery, leader death, paused leader.

  /usr/bin/python3 tests/integration/test_bus_cluster.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

fanout-feed-sim -> ingest A, ingest B (one leads: Redis lease, 1 s ttl) -> Redis -> edges 1..3 ->
envelope-mode clients (they see the bus seq and the simulator's message with its own seq).
Checks:
  1. every client gets every message of its topics, in order (bus seq and simulator seq +1), and
     clients of different edges get identical bytes for the same seq;
  2. SIGKILL the leader: the standby wins the lease (fence grows) and connects its upstream; clients
     stay connected and see no bus seq gap (the simulator's seq jumps over the takeover only);
  3. a new candidate C joins; SIGSTOP the leader B: C takes over; SIGCONT B: B logs that it lost the
     lease, and nothing it read while paused is delivered (the simulator's seq never goes back, bus
     seq stays +1).
The takeover time is logged, not asserted (the benchmark documents it).
"""

import asyncio
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_testlib import (LOST_RE, TOPICS, WON_RE, BusClient, Redis, check, check_same_bytes,  # noqa: E402
                         edge, ingest, log, wait_leader)
from fanout_testlib import WsClient  # noqa: E402
from relay_testlib import Checks, FeedSim, run_relay_test  # noqa: E402

TTL_MS = 1000


async def body(args):
    checks = Checks()
    redis = Redis()
    sim = FeedSim(args.sim, rate=40)
    declared = ["--topic", "news:declared"]  # no message ever: known through the registry only
    a = ingest(args.relay, redis, sim.url, "ingest-A", TTL_MS, declared)
    b = ingest(args.relay, redis, sim.url, "ingest-B", TTL_MS, declared)
    leader, fence1 = await wait_leader([a, b])
    standby = b if leader is a else a
    log(f"leader {leader.name} (fence {fence1}), standby {standby.name}")
    edges = [edge(args.relay, redis, f"edge-{i}", min_known=len(TOPICS) + 1) for i in (1, 2, 3)]
    clients = []
    for i, e in enumerate(edges):
        clients.append(await BusClient.open(e.port, TOPICS, f"client-{i + 1}a(all)"))
        clients.append(await BusClient.open(e.port, TOPICS[i:i + 2], f"client-{i + 1}b(two)"))

    async def delivery():
        await asyncio.gather(*(c.more_each(30) for c in clients))
        for c in clients:
            c.check_bus_contiguous()
            c.check_upstream_increasing(contiguous=True)
        log(f"    {check_same_bytes(clients)} envelopes compared across edges")
    await checks.arun("every client: every message of its topics, in order, same bytes on every edge",
                      delivery)

    async def topic_registry():
        # What exists is the same on every node: an edge refuses a name no ingest node has, and
        # joins a topic the ingest declared before its first message (learnt through Redis).
        c = await WsClient.open(edges[0].port, "/ws", name="asker")
        await c.send_json({"op": "subscribe", "args": ["nope:X"]})
        _, d = await c.next_event(10, "the answer for an unknown topic")
        check(d.get("code") == 4008 and d.get("arg") == "nope:X", f"unknown topic on an edge: {d}")
        await c.send_json({"op": "subscribe", "args": ["news:declared"]})
        _, d = await c.next_event(10, "the answer for a declared topic")
        check(d.get("event") == "subscribe" and d.get("arg") == "news:declared",
              f"a topic declared on the ingest node, joined on an edge: {d}")
        await c.ws.close()
    await checks.arun("topic registry: unknown on every node -> 4008; declared on the ingest -> joined on an edge",
                      topic_registry)

    async def leader_killed():
        before = {c.name: len(c.got[TOPICS[0]]) for c in clients if TOPICS[0] in c.got}
        marks = {standby.name: standby.line_count()}
        t0 = time.monotonic()
        log(f"    SIGKILL {leader.name}")
        leader.proc.send_signal(signal.SIGKILL)
        new_leader, fence2 = await wait_leader([standby], after=marks, timeout=30)
        took = time.monotonic() - t0
        check(fence2 > fence1, f"fencing number did not grow: {fence1} -> {fence2}")
        await standby.wait_line(r"upstream upstream live", after=marks[standby.name], what="upstream live")
        log(f"    {new_leader.name} won with fence {fence2} {took:.2f} s after the kill (ttl {TTL_MS} ms)")
        await asyncio.gather(*(c.more_each(20) for c in clients))
        for c in clients:
            c.check_open()
            c.check_bus_contiguous()
            c.check_upstream_increasing(contiguous=False)
        check(all(len(c.got[TOPICS[0]]) > n for c in clients for name, n in before.items() if c.name == name),
              "some client got nothing new after the takeover")
        return fence2
    fence2 = await checks.arun("SIGKILL the leader: the standby takes over, no bus seq gap", leader_killed)

    async def paused_leader():
        c_node = ingest(args.relay, redis, sim.url, "ingest-C", TTL_MS)
        marks = {c_node.name: c_node.line_count()}
        b_mark = standby.line_count()
        await asyncio.sleep(TTL_MS / 1000 * 2)  # C stands by while B renews
        check(c_node.find(WON_RE, marks[c_node.name]) is None, "C won the lease while B was renewing it")
        log(f"    SIGSTOP {standby.name}")
        standby.proc.send_signal(signal.SIGSTOP)
        _, fence3 = await wait_leader([c_node], after=marks, timeout=30)
        check(fence3 > (fence2 or 0), f"fencing number did not grow: {fence2} -> {fence3}")
        await asyncio.gather(*(c.more_each(20) for c in clients))
        log(f"    C leads with fence {fence3}; SIGCONT {standby.name}")
        standby.proc.send_signal(signal.SIGCONT)
        await standby.wait_line(LOST_RE, after=b_mark, what="the paused leader learns it lost", timeout=30)
        await standby.wait_line(r"upstream upstream stopped", after=b_mark, what="its upstream stopped")
        await asyncio.gather(*(c.more_each(20) for c in clients))
        for c in clients:
            c.check_open()
            c.check_bus_contiguous()
            c.check_upstream_increasing(contiguous=False)
        refused = standby.find_all(r"bus: published \d+ dropped \d+ failed \d+ fenced-out [1-9]")
        log(f"    {standby.name} afterwards: {standby.find_all(LOST_RE, b_mark)[0][1].split('  ')[-1]}; "
            f"publishes refused by the fencing check: {'yes' if refused else 'none (it stepped down first)'}")
    await checks.arun("SIGSTOP/SIGCONT the leader: a successor takes over, the old one delivers nothing",
                      paused_leader)

    await asyncio.gather(*(c.client.close() for c in clients), return_exceptions=True)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("bus_cluster", body, timeout=150)

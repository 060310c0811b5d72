"""Helpers for the hostile-client tests (test_hostile_*.py): an attacker does something to the
relay while a well-behaved canary subscriber watches that nobody else is hurt.

What is here:
  * rss_kib(pid): the resident set of a process, from /proc (what the kernel really holds, not
    what the allocator's counters say).
  * Canary: a python-websockets client of the relay, subscribed to feed-sim topics, receiving in
    the background. It records every message's seq and its latency (arrival time minus the
    simulator's `ts`, microseconds since the epoch: the simulator and the test share a clock).
    check() asserts the seq stayed contiguous, the connection open and the latency bounded.
  * hostile_relay(): fanout-feed-sim plus fanout-relay wired the way the attack tests need them,
    with extra relay flags.

Every wait is bounded; every process is started through relay_testlib, so run_relay_test kills it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (ROUTE, FeedSim, Relay, Stream, check, declare_args, log,  # noqa: E402
                           parse_sim_message, relay_client, subscribe_msg, topic_of)

CANARY_STREAMS = [("tickers", "BTC-USDT")]
CANARY_TOPICS = [topic_of(s) for s in CANARY_STREAMS]


# Set by tests/integration/CMakeLists.txt in sanitizer builds: there RSS is not the relay's own
# (ASan keeps freed memory in its quarantine, 256 MiB by default, and adds shadow memory), so memory
# bounds are logged, not asserted; the release build asserts them.
SANITIZED = os.environ.get("TEST_UNDER_SANITIZER") == "1"


def check_rss(ok: bool, msg: str):
    """check() for a bound on RSS; logged only under a sanitizer (SANITIZED)."""
    if SANITIZED:
        if not ok:
            log(f"    (not checked under a sanitizer) {msg}")
        return
    check(ok, msg)


def rss_kib(pid: int) -> int:
    """VmRSS of pid in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Canary:
    """A subscriber that keeps up; its latency and continuity are what an attack must not touch."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.name = stream.name
        self.latencies: list[float] = []  # seconds, in arrival order
        self.task = asyncio.ensure_future(self._run())

    @classmethod
    async def open(cls, port: int, topics=None, name: str = "canary") -> "Canary":
        return cls(await relay_client(port, topics or CANARY_TOPICS, name))

    async def _run(self):
        c = self.stream.client
        while True:
            _, m = await c.next_data(3600)  # ends (by failing) when the connection closes
            now_us = time.time() * 1e6
            self.stream._take(m)
            _, _, d = parse_sim_message(m, self.name)
            self.latencies.append(max(0.0, (now_us - d["data"][0]["ts"]) / 1e6))

    def mark(self) -> int:
        """Index into latencies: check(since=mark) looks only at what arrived after it."""
        return len(self.latencies)

    async def check(self, max_latency: float = 1.0, since: int = 0, min_messages: int = 5,
                    wait: float = 10, what: str = ""):
        """After `since`: at least min_messages arrived (waits up to `wait` s for them), the
        worst latency is under max_latency, every topic's seq is contiguous, the connection open."""
        deadline = time.monotonic() + wait
        while len(self.latencies) - since < min_messages and time.monotonic() < deadline:
            check(not self.task.done(), f"{self.name}: stopped receiving {what}: "
                                        f"{self.stream.client.describe_close()}")
            await asyncio.sleep(0.05)
        got = self.latencies[since:]
        check(len(got) >= min_messages,
              f"{self.name}: only {len(got)} messages in {wait} s {what} (want {min_messages})")
        worst = max(got)
        log(f"    {self.name}: {len(got)} messages {what}, worst latency {worst * 1000:.1f} ms")
        check(worst <= max_latency,
              f"{self.name}: latency {worst * 1000:.0f} ms > {max_latency * 1000:.0f} ms {what}")
        for t in self.stream.topics:
            self.stream.check_contiguous(t, what=what)
        check(not self.task.done(), f"{self.name}: {self.stream.client.describe_close()} {what}")

    async def close(self):
        self.task.cancel()
        await self.stream.client.close()


async def hostile_relay(args, relay_args=(), rate: float = 50, streams=None
                        ) -> tuple[FeedSim, Relay]:
    """A simulator publishing `streams` (default: the canary's) at `rate` per second per stream,
    and a relay subscribed to them on 127.0.0.1:0, live. relay_args are appended."""
    streams = streams or CANARY_STREAMS
    sim = FeedSim(args.sim, rate=rate)
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(streams), *declare_args(streams),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", *relay_args])
    await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    await sim.wait_stats(lambda st: st["subscriptions"] == len(streams), "the relay subscribed")
    log(f"relay pid {relay.pid}: RSS {rss_kib(relay.pid)} KiB at start")
    return sim, relay

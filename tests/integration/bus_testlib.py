"""Helpers for the Redis bus tests (test_bus_*.py), on top of relay_testlib.

What is here:
  * Redis: a real redis-server (Debian's) on a port of its own, started and stopped by PID; with
    `appendonly_dir` it keeps its data across a restart on the same port.
  * ingest()/edge(): fanout-relay in role ingest (fed by a FeedSim, leadership through Redis) or
    edge (serves clients from Redis).
  * BusClient: a relay client in envelope mode ({"topic","seq","data"}), which sees the bus seq of
    every message besides the simulator's own seq inside `data`; with the checks the tests share.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (HOST, ROUTE, Relay, WsClient, check, fail, kill_child, log,  # noqa: E402,F401
                           short, spawn, subscribe_msg, topic_of)

STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT"),
           ("trades", "BTC-USDT"), ("trades", "ETH-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]
LEASE = "upstream"  # the lease is named after the upstream; --upstream names it "upstream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, port: int = 0, appendonly_dir: str | None = None, name: str = "redis"):
        self.port = port or free_port()
        self.dir = appendonly_dir
        self.name = name
        self.proc = None
        self.start()

    def start(self, timeout: float = 15):
        argv = ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "",
                "--daemonize", "no", "--loglevel", "warning"]
        if self.dir:
            argv += ["--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir]
        else:
            argv += ["--appendonly", "no"]
        self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while self.command("PING") != "+PONG":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                fail(f"{self.name}: redis-server on port {self.port} did not start "
                     f"(exit {self.proc.poll()})")
            time.sleep(0.02)
        log(f"{self.name}: pid {self.proc.pid} on port {self.port}")

    def command(self, *args: str) -> str | None:
        """One command over a fresh connection; the first reply line, or None if unreachable."""
        try:
            with socket.create_connection((HOST, self.port), timeout=2) as s:
                req = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
                s.sendall(req.encode())
                return s.makefile("rb").readline().decode().rstrip("\r\n")
        except OSError:
            return None

    def stop(self, timeout: float = 20):
        """SIGTERM: redis writes its append-only file and exits."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name}: did not exit within {timeout} s of SIGTERM")
        kill_child(self.proc)

    async def astop(self):
        await asyncio.to_thread(self.stop)

    async def astart(self):
        await asyncio.to_thread(self.start)


def ingest(relay_path: str, redis: Redis, sim_url: str, name: str, ttl_ms: int = 1000, args=()) -> Relay:
    r = Relay(relay_path, ["--role", "ingest", "--redis", f"{HOST}:{redis.port}",
                           "--lease-ttl-ms", ttl_ms, "--upstream", sim_url,
                           "--subscribe", subscribe_msg(STREAMS), "--route", ROUTE,
                           "--stats-interval", 1, *args], name=name, wait_ready=False)
    r.wait_line_sync(r"ready: ingest only", what="ingest ready")
    return r


def edge(relay_path: str, redis: Redis, name: str, port: int = 0, args=(), wait_topics: bool = True,
         min_known: int = len(TOPICS)) -> Relay:
    """An edge relay. With wait_topics, returns once it has read the cluster's topics from Redis:
    until then its clients may join only declared topics (docs/security.md, "Topics")."""
    r = Relay(relay_path, ["--role", "edge", "--redis", f"{HOST}:{redis.port}",
                           "--listen", f"{HOST}:{port}", "--stats-interval", 1, *args], name=name)
    if wait_topics:  # the ingest nodes' topics (TOPICS), seen in the edge's bus stats line
        after = 0
        while True:
            i, line = r.wait_line_sync(r"bus: .* known (\d+)", after=after, what="the cluster's topics known")
            if int(re.search(r"known (\d+)", line).group(1)) >= min_known:
                break
            after = i + 1
    return r


WON_RE = rf"lease {LEASE} won: fence (\d+)"
LOST_RE = rf"lease {LEASE} lost: "


async def wait_leader(candidates: list[Relay], after: dict | None = None, timeout: float = 30
                      ) -> tuple[Relay, int]:
    """The candidate that logs `lease won` (after the given line index per candidate) first."""
    deadline = time.monotonic() + timeout
    while True:
        for c in candidates:
            if not c.alive():
                continue
            r = c.find(WON_RE, (after or {}).get(c.name, 0))
            if r:
                import re
                return c, int(re.search(WON_RE, r[1]).group(1))
        if time.monotonic() > deadline:
            fail(f"no candidate won the lease within {timeout} s")
        await asyncio.sleep(0.02)


class BusClient:
    """An envelope-mode client of an edge: per topic, [(bus seq, sim seq, raw envelope text)]."""

    def __init__(self, client: WsClient, topics, name: str):
        self.client = client
        self.topics = list(topics)
        self.name = name
        self.got: dict[str, list[tuple[int, int, str]]] = {t: [] for t in self.topics}

    @classmethod
    async def open(cls, port: int, topics, name: str, since: dict | None = None) -> "BusClient":
        c = await WsClient.open(port, "/ws?envelope=1", name=name)
        msg = {"op": "subscribe", "args": list(topics)}
        if since:
            msg["since"] = since
        await c.send_json(msg)
        want = set(topics)
        while want:
            _, d = await c.next_event(10, f"subscribe acks for {sorted(want)}")
            check(d.get("event") in ("subscribe", "resync") and d.get("arg") in want,
                  f"{name}: expected a subscribe ack for one of {sorted(want)}, got {d}")
            check(d.get("event") == "subscribe", f"{name}: {d.get('arg')} could not be recovered: {d}")
            want.discard(d["arg"])
        return cls(c, topics, name)

    def _take(self, text):
        try:
            d = json.loads(text)
            topic, seq, data = d["topic"], d["seq"], d["data"]
            sim_seq = data["data"][0]["seq"]
        except (ValueError, KeyError, IndexError, TypeError):
            fail(f"{self.name}: not an envelope of a simulator message: {short(text)}")
        check(topic in self.got, f"{self.name}: got topic {topic!r}, subscribed to {self.topics}")
        check(topic_of((data["arg"]["channel"], data["arg"]["instId"])) == topic,
              f"{self.name}: envelope of {topic} carries another topic's message: {short(text)}")
        self.got[topic].append((seq, sim_seq, text))

    def drain(self):
        for _, m in self.client.pending_data():
            self._take(m)

    async def until(self, pred, what: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        self.drain()
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"{self.name}: {what}: not within {timeout} s; received "
                     + ", ".join(f"{t}: {len(v)}" for t, v in sorted(self.got.items())))
            _, m = await self.client.next_data(left)
            self._take(m)

    async def more_each(self, n: int, timeout: float = 30):
        base = {t: len(v) for t, v in self.got.items()}
        await self.until(lambda s: all(len(s.got[t]) >= base[t] + n for t in s.topics),
                         f"{n} more messages on each topic", timeout)

    def last_seq(self, topic: str) -> int:
        return self.got[topic][-1][0] if self.got[topic] else 0

    def check_bus_contiguous(self):
        """Bus seq +1 per message, per topic: nothing lost, duplicated or reordered."""
        for t, v in self.got.items():
            s = [q for q, _, _ in v]
            for i in range(1, len(s)):
                if s[i] != s[i - 1] + 1:
                    kind = "duplicate" if s[i] <= s[i - 1] else "gap"
                    fail(f"{self.name}: {t}: bus seq {kind}: {s[i - 1]} then {s[i]} "
                         f"(message {i} of {len(s)}; around {s[max(0, i - 5):i + 5]})")

    def check_upstream_increasing(self, contiguous: bool):
        """The simulator's own seq: strictly increasing (a deposed leader's late message would go
        back), and +1 when no leader change happened."""
        for t, v in self.got.items():
            s = [q for _, q, _ in v]
            for i in range(1, len(s)):
                if s[i] <= s[i - 1] or (contiguous and s[i] != s[i - 1] + 1):
                    fail(f"{self.name}: {t}: upstream seq {s[i - 1]} then {s[i]} "
                         f"(bus seq {v[i - 1][0]} then {v[i][0]})")

    def envelopes(self, topic: str) -> dict[int, str]:
        return {q: text for q, _, text in self.got[topic]}

    def check_open(self):
        check(not self.client.closed.is_set(), f"{self.name}: {self.client.describe_close()}")


def check_same_bytes(clients: list[BusClient]):
    """Clients of different edges got identical envelopes for the same topic and bus seq."""
    n = 0
    for t in TOPICS:
        ref: dict[int, tuple[str, str]] = {}
        for c in clients:
            if t not in c.got:
                continue
            for q, text in c.envelopes(t).items():
                if q in ref:
                    check(ref[q][1] == text, f"{c.name} and {ref[q][0]}: {t} seq {q} differs: "
                                             f"{short(text)} vs {short(ref[q][1])}")
                    n += 1
                else:
                    ref[q] = (c.name, text)
    return n

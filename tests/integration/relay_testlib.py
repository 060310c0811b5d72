"""Helpers for the fanout-relay end-to-end tests (test_relay_*.py), on top of fanout_testlib.

Run with Debian's python (/usr/bin/python3, python3-websockets 10.4). Every test gets
`--server PATH` (unused here, checked like every integration test) plus `--relay PATH` and
`--sim PATH` (fanout-relay and fanout-feed-sim); see tests/integration/CMakeLists.txt.

What is here:
  * relay_parser()/run_relay_test(): the fanout_testlib runner (overall timeout, cleanup of every
    started process by PID, PASS/FAIL) with the two extra binaries.
  * FeedSim: fanout-feed-sim as a child process, driven through its stdin commands (each answers
    exactly one stdout line, so a command has been applied when its answer arrives).
  * Relay: fanout-relay as a child process; its log (stderr) goes to a file that the test watches
    for lines (`ready: try ws://127.0.0.1:PORT/...`, `upstream NAME live: URL`, `... down (...)`).
  * Stream: what one WebSocket client received from the relay (or from the simulator directly),
    parsed and grouped per topic `channel:instId`, with the checks the tests share (order, gaps,
    duplicates, byte-for-byte equality with a reference client connected straight to the sim).

Assertions are about what is observable (log lines, messages, close codes, exit codes); waits are
bounded by generous timeouts and end as soon as the awaited thing happens, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (HOST, Checks, Server, TestFailure, WsClient, _servers,  # noqa: E402,F401
                            base_parser, check, fail, kill_child, log, run_test, short, spawn)

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.normpath(os.path.join(SOURCE_DIR, "..", ".."))

ROUTE = "{arg.channel}:{arg.instId}"


def relay_parser(description: str):
    p = base_parser(description)
    p.add_argument("--relay", required=True, help="path to fanout-relay")
    p.add_argument("--sim", required=True, help="path to fanout-feed-sim")
    return p


def run_relay_test(name: str, body, timeout: float = 90):
    """run_test() with --relay/--sim; a smaller default overall timeout than the other tests."""
    p = relay_parser(name)
    p.set_defaults(timeout=timeout)

    async def checked(args):
        for what in ("relay", "sim"):
            path = getattr(args, what)
            if not os.access(path, os.X_OK):
                fail(f"--{what} {path!r} is missing or not executable")
        await body(args)
    run_test(name, checked, p)


def subscribe_msg(streams) -> str:
    """The OKX-style upstream subscribe for [(channel, instId), ...]."""
    return json.dumps({"op": "subscribe",
                       "args": [{"channel": c, "instId": i} for c, i in streams]},
                      separators=(",", ":"))


def topic_of(stream) -> str:
    return f"{stream[0]}:{stream[1]}"


def declare_args(streams) -> list[str]:
    """`--topic T` for each stream: a relay's clients may only join known topics (else 4008), and a
    client of a test often subscribes before the upstream's first message has made the topic."""
    return [a for s in streams for a in ("--topic", topic_of(s))]


def declare_toml(streams) -> str:
    """The same as a config section."""
    return "[topics]\ndeclare = [" + ", ".join(f'"{topic_of(s)}"' for s in streams) + "]\n"


# ----------------------------------------------------------------------------------------------
# The feed simulator

class FeedSim(Server):
    """fanout-feed-sim with `--port PORT --rate RATE`. Commands answer one line each."""

    def __init__(self, path: str, port: int = 0, rate: float = 20, args=(), name: str = "feed-sim"):
        super().__init__(path, ["--port", port, "--rate", rate, *args], name=name)
        self.url = f"ws://{HOST}:{self.port}/ws"

    def command(self, command: str, timeout: float = 30) -> str:
        """Sends a command, returns its answer, which must start with `ok <verb>`."""
        line = self.cmd(command, "", timeout)  # the next line, whatever it is: the answer
        verb = command.split()[0]
        check(line.startswith(f"ok {verb}"), f"{self.name}: {command!r} answered {line!r}")
        return line

    def command_count(self, command: str) -> int:
        """For drop/drop-one/garbage-*: the `connections=N` of the answer."""
        line = self.command(command)
        m = re.search(r"connections=(\d+)", line)
        check(m is not None, f"{self.name}: {command!r} answered {line!r} (no connections=N)")
        return int(m.group(1))

    async def acommand(self, command: str) -> str:
        return await asyncio.to_thread(self.command, command)

    async def acommand_count(self, command: str) -> int:
        return await asyncio.to_thread(self.command_count, command)

    async def wait_stats(self, pred, what: str, timeout: float = 20) -> dict:
        """Polls `stats` until pred(stats) holds."""
        deadline = time.monotonic() + timeout
        while True:
            st = await self.astats()
            if pred(st):
                return st
            if time.monotonic() > deadline:
                fail(f"{self.name}: {what} not reached within {timeout} s; last stats {st}")
            await asyncio.sleep(0.05)

    def quit(self, timeout: float = 30) -> int:
        self.cmd("quit", "ok quit", timeout)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name}: did not exit within {timeout} s after quit")


# ----------------------------------------------------------------------------------------------
# The relay

READY_RE = re.compile(r"ready: try\s+ws://[^:/]+:(\d+)/")
ADMIN_RE = re.compile(r"admin: serving http://[^ ]+:(\d+)/")


class Relay:
    """fanout-relay with its log (stdout and stderr) in a temp file that the test reads."""

    def __init__(self, path: str, args=(), name: str = "relay", wait_ready: bool = True,
                 ready_timeout: float = 20, env: dict | None = None):
        self.name = name
        args = [*map(str, args)]
        # The admin listener (metrics, status page, /topics) has a fixed default port: tests run
        # in parallel, so each relay takes a free one unless the test chose.
        if "--admin-listen" not in args and "FANOUT_ADMIN_LISTEN" not in (env or {}):
            args += ["--admin-listen", f"{HOST}:0"]
        self.argv = [path, *args]
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="fanout-relay-", suffix=".log",
                                                       delete=False)
        log(f"{name}: starting {' '.join(self.argv)}")
        self.proc = spawn(self.argv, stdin=subprocess.DEVNULL, stdout=self.stderr_file,
                          stderr=subprocess.STDOUT, env=env)  # env: None inherits ours
        self.pid = self.proc.pid
        _servers.append(self)  # failure reports print our log tail; run_test unlinks the file
        self.port = None
        self.admin_port = None  # metrics, status page, status.json, /topics
        if wait_ready:
            _, line = self.wait_line_sync(READY_RE, timeout=ready_timeout, what="the ready line")
            self.port = int(READY_RE.search(line).group(1))
            admin = self.find(ADMIN_RE)
            self.admin_port = int(ADMIN_RE.search(admin[1]).group(1)) if admin else None
            log(f"{name}: pid {self.pid} serving on port {self.port}, admin on {self.admin_port}")

    # -- the log

    def lines(self) -> list[str]:
        with open(self.stderr_file.name, "rb") as f:
            data = f.read()
        text = data.decode("utf-8", "replace")
        out = text.split("\n")
        if not text.endswith("\n"):
            out = out[:-1]  # a line still being written
        return out[:-1] if out and out[-1] == "" else out

    def find(self, pattern, after: int = 0) -> tuple[int, str] | None:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        for i, line in enumerate(self.lines()[after:], start=after):
            if rx.search(line):
                return i, line
        return None

    def find_all(self, pattern, after: int = 0) -> list[tuple[int, str]]:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        return [(i, ln) for i, ln in enumerate(self.lines()[after:], start=after) if rx.search(ln)]

    def _not_found(self, what, pattern, timeout, after):
        pat = pattern.pattern if hasattr(pattern, "pattern") else pattern
        fail(f"{self.name}: no log line matching {pat!r} ({what}) after line {after} within "
             f"{timeout} s; " + self.describe_death())

    def wait_line_sync(self, pattern, after: int = 0, timeout: float = 20, what: str = ""
                       ) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while True:
            r = self.find(pattern, after)
            if r:
                return r
            if self.proc.poll() is not None or time.monotonic() > deadline:
                r = self.find(pattern, after)  # the last words of a dead process
                if r:
                    return r
                self._not_found(what, pattern, timeout, after)
            time.sleep(0.02)

    async def wait_line(self, pattern, after: int = 0, timeout: float = 20, what: str = ""
                        ) -> tuple[int, str]:
        """Index and text of the first log line at index >= after matching pattern."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.find(pattern, after)
            if r:
                return r
            if self.proc.poll() is not None or time.monotonic() > deadline:
                r = self.find(pattern, after)
                if r:
                    return r
                self._not_found(what, pattern, timeout, after)
            await asyncio.sleep(0.02)

    def line_count(self) -> int:
        return len(self.lines())

    @staticmethod
    def live_re(upstream: str) -> str:
        return rf"upstream {re.escape(upstream)} live: "

    @staticmethod
    def down_re(upstream: str) -> str:
        return rf"upstream {re.escape(upstream)} down \((.*)\); reconnect in \d+ ms"

    # -- process

    def alive(self) -> bool:
        return self.proc.poll() is None

    def require_alive(self, when: str = ""):
        check(self.alive(), f"{self.name}: died {when}: " + self.describe_death())

    def stderr_tail(self, nbytes: int = 3000) -> str:
        lines = [ln for ln in self.lines() if " stats: " not in ln]  # one per second: noise
        text = "\n".join(lines)
        return text[-nbytes:]

    def describe_death(self) -> str:
        rc = self.proc.poll()
        state = "still running" if rc is None else f"exited with {rc}"
        if rc is not None and rc < 0:
            try:
                state += f" ({signal.Signals(-rc).name})"
            except ValueError:
                pass
        return f"{self.name} (pid {self.pid}) {state}; log (stats lines left out):\n{self.stderr_tail()}"

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (fails if it does not exit within timeout)."""
        log(f"{self.name}: SIGTERM")
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name}: did not exit within {timeout} s of SIGTERM; " + self.describe_death())

    async def aterminate(self, timeout: float = 30) -> int:
        return await asyncio.to_thread(self.terminate, timeout)

    def kill(self):
        kill_child(self.proc)


def http_get(port: int, path: str) -> tuple[int, str]:
    """One GET on 127.0.0.1:port: (status, body)."""
    import http.client
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


async def wait_readyz(ports, status: int, reason: str | None, what: str, timeout: float = 20):
    """Polls GET /readyz on every port until each answers `status` (and, for 503, `reason`)."""
    deadline = time.monotonic() + timeout
    while True:
        got = [await asyncio.to_thread(http_get, p, "/readyz") for p in ports]
        if all(s == status and (reason is None or json.loads(b).get("reason") == reason) for s, b in got):
            log(f"    /readyz {what}: {got[0][0]} {got[0][1].strip()}")
            return
        check(time.monotonic() < deadline, f"/readyz {what}: expected {status} {reason or ''} within {timeout} s, "
                                           f"got {got}")
        await asyncio.sleep(0.05)


def run_command(argv, timeout: float = 30, env: dict | None = None) -> tuple[int, str, str]:
    """Runs a short-lived command (a registered child); (exit code, stdout, stderr)."""
    p = spawn([*map(str, argv)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              stderr=subprocess.PIPE, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_child(p)
        fail(f"{' '.join(map(str, argv))}: no exit within {timeout} s")
    kill_child(p)  # reaped already; drops it from the bookkeeping
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def write_file(d: str, name: str, text: str) -> str:
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ----------------------------------------------------------------------------------------------
# Received messages

def parse_sim_message(text, who: str) -> tuple[str, int, dict]:
    """(topic, seq, parsed) of a feed-sim data message; fails on anything else."""
    if isinstance(text, (bytes, bytearray)):
        fail(f"{who}: expected a text message, got binary {short(text)}")
    try:
        d = json.loads(text)
    except ValueError as e:
        fail(f"{who}: data message is not JSON ({e}): {short(text)}")
    try:
        arg, item = d["arg"], d["data"][0]
        topic = f"{arg['channel']}:{arg['instId']}"
        seq = item["seq"]
        ok = (isinstance(seq, int) and isinstance(item["ts"], int)
              and item["instId"] == arg["instId"] and len(d["data"]) == 1)
    except (KeyError, IndexError, TypeError):
        ok = False
    check(ok, f"{who}: not a feed-sim data message: {short(text)}")
    return topic, seq, d


class Stream:
    """The data messages one client received, per topic, in arrival order: [(seq, text), ...].
    Messages of topics outside `topics` fail at once."""

    def __init__(self, client: WsClient, topics):
        self.client = client
        self.name = client.name
        self.topics = set(topics)
        self.got: dict[str, list[tuple[int, str]]] = {t: [] for t in self.topics}

    def _take(self, m: str):
        topic, seq, _ = parse_sim_message(m, self.name)
        check(topic in self.topics, f"{self.name}: received topic {topic!r}, subscribed only to "
                                    f"{sorted(self.topics)}: {short(m)}")
        self.got[topic].append((seq, m))

    def drain(self):
        """Takes what has arrived already, without waiting."""
        for _, m in self.client.pending_data():
            self._take(m)

    async def until(self, pred, what: str, timeout: float = 20):
        """Receives until pred(self) holds."""
        deadline = time.monotonic() + timeout
        self.drain()
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"{self.name}: {what}: not within {timeout} s; received "
                     + ", ".join(f"{t}: {len(v)} (last seq {v[-1][0] if v else None})"
                                 for t, v in sorted(self.got.items())))
            try:
                _, m = await self.client.next_data(left)
            except TestFailure as e:
                fail(f"{e} (while waiting until {what})")
            self._take(m)

    async def count_each(self, n: int, timeout: float = 20, topics=None):
        """Receives until every topic (or those given) has at least n messages."""
        ts = list(topics or self.topics)
        await self.until(lambda s: all(len(s.got[t]) >= n for t in ts),
                         f"{n} messages on each of {sorted(ts)}", timeout)

    async def more_each(self, n: int, timeout: float = 20, topics=None):
        """Receives until every topic has n more messages than now."""
        ts = list(topics or self.topics)
        base = {t: len(self.got[t]) for t in ts}
        await self.until(lambda s: all(len(s.got[t]) >= base[t] + n for t in ts),
                         f"{n} more messages on each of {sorted(ts)}", timeout)

    async def seq_at_least(self, topic: str, seq: int, timeout: float = 20, start: int = 0):
        """Receives until a message of topic with seq >= `seq` arrived at index >= start."""
        await self.until(lambda s: any(q >= seq for q, _ in s.got[topic][start:]),
                         f"{topic}: a message with seq >= {seq}", timeout)

    def seqs(self, topic: str, start: int = 0) -> list[int]:
        return [q for q, _ in self.got[topic][start:]]

    def texts(self, topic: str) -> dict[int, str]:
        return {q: m for q, m in self.got[topic]}

    def check_contiguous(self, topic: str, start: int = 0, what: str = ""):
        """seq strictly +1 from message to message (from index start on)."""
        s = self.seqs(topic, start)
        for i in range(1, len(s)):
            if s[i] != s[i - 1] + 1:
                kind = ("duplicate" if s[i] in s[:i] else
                        "gap" if s[i] > s[i - 1] + 1 else "reordered")
                fail(f"{self.name}: {topic}: {kind}{' ' + what if what else ''}: seq {s[i - 1]} "
                     f"then {s[i]} (messages {start + i - 1}, {start + i} of "
                     f"{len(self.got[topic])}); seqs around: {s[max(0, i - 5):i + 5]}")

    def breaks(self, topic: str, start: int = 0) -> list[tuple[int, int]]:
        """The places where seq is not previous + 1: [(previous, next), ...]."""
        s = self.seqs(topic, start)
        return [(s[i - 1], s[i]) for i in range(1, len(s)) if s[i] != s[i - 1] + 1]

    def check_no_duplicates(self, topic: str):
        s = self.seqs(topic)
        seen, dups = set(), []
        for q in s:
            if q in seen:
                dups.append(q)
            seen.add(q)
        check(not dups, f"{self.name}: {topic}: duplicate seqs {dups[:10]} "
                        f"({len(dups)} duplicates in {len(s)} messages)")

    def check_same_bytes(self, ref: "Stream", topic: str, start: int = 0, min_seq: int = 0
                         ) -> int:
        """Every message (index >= start, seq >= min_seq) equals, as text, the message of the same
        seq that `ref` received. Returns the number compared. ref must have them all."""
        theirs = ref.texts(topic)
        n = 0
        for q, m in self.got[topic][start:]:
            if q < min_seq:
                continue
            check(q in theirs, f"{self.name}: {topic} seq {q}: the reference client "
                               f"{ref.name} has no such message (it has "
                               f"{min(theirs, default=None)}..{max(theirs, default=None)})")
            if m != theirs[q]:
                i = next((i for i, (a, b) in enumerate(zip(m, theirs[q])) if a != b),
                         min(len(m), len(theirs[q])))
                fail(f"{self.name}: {topic} seq {q}: relayed message differs from the upstream's "
                     f"at offset {i}: relayed {short(m)}, upstream {short(theirs[q])}")
            n += 1
        return n


async def relay_client(port: int, topics, name: str, via_url: bool = False) -> Stream:
    """A python-websockets client of the relay subscribed to topics (URL query or JSON op)."""
    if via_url:
        c = await WsClient.open(port, "/ws?subscribe=" + ",".join(topics), name=name)
        want = set(topics)
        while want:
            _, d = await c.next_event(10, f"subscribe acks for {sorted(want)}")
            check(d.get("event") == "subscribe" and d.get("arg") in want,
                  f"{name}: expected a subscribe ack for one of {sorted(want)}, got {d}")
            want.discard(d["arg"])
    else:
        c = await WsClient.open(port, "/ws", name=name)
        await c.subscribe(*topics)
    return Stream(c, topics)


async def sim_client(port: int, streams, name: str, client: WsClient | None = None) -> Stream:
    """A python-websockets client straight to the simulator (or `client`, already connected to
    it, e.g. over wss): the reference for what the relay must forward byte for byte."""
    c = client or await WsClient.open(port, "/ws", name=name)
    await c.send(subscribe_msg(streams))
    want = {topic_of(s) for s in streams}
    while want:
        _, d = await c.next_event(10, f"simulator acks for {sorted(want)}")
        arg = d.get("arg") or {}
        t = f"{arg.get('channel')}:{arg.get('instId')}"
        check(d.get("event") == "subscribe" and t in want,
              f"{name}: expected a simulator subscribe ack for one of {sorted(want)}, got {d}")
        want.discard(t)
    return Stream(c, [topic_of(s) for s in streams])


def check_open(*streams: Stream, when: str = ""):
    """No client connection has been closed."""
    for s in streams:
        c = s.client
        check(not c.closed.is_set(), f"{c.name}: {c.describe_close()} {when}".rstrip())


def check_no_stray_events(*streams: Stream):
    """A relay client gets only its own acks as events: upstream acks/errors are not forwarded."""
    for s in streams:
        ev = s.client.pending_events()
        check(not ev,
              f"{s.name}: unexpected events from the relay: {[short(m, 200) for _, m in ev]}")


async def close_all(*streams: Stream):
    """Closes the clients (concurrently): an open websockets connection left to asyncio.run's
    teardown costs its close_timeout."""
    await asyncio.gather(*(s.client.close() for s in streams), return_exceptions=True)

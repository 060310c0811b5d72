#!/usr/bin/python3
"""Many concurrent connections, nothing lost.

  /usr/bin/python3 tests/integration/test_many_connections.py --server build/tests/integration/fanout-test-server
  (--connections 5000 --procs 5 --topics 10 --messages 20 by default)

The connections are spread over several client processes (this script with --child), each
binding its sockets to its own source address 127.0.0.2, 127.0.0.3, ... Connection g subscribes to
two of the topics (t{g%10} and t{(3g+1)%10}), half through the URL and half through a JSON
subscribe. When the server counts every subscription it publishes `messages` messages per topic;
every connection must receive every message of its two topics, byte-exact and in order.
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (HOST, Server, TestFailure, base_parser, check, check_payload,  # noqa: E402
                            fail, is_event, log, run_test, spawn)

MSG_BYTES = 200


def topics_for(g: int, ntopics: int) -> list:
    a, b = g % ntopics, (3 * g + 1) % ntopics
    return sorted({f"t{a}", f"t{b}"})


# ---------------------------------------------------------------------------------------------
# child: one process holding a share of the connections

async def child_main(a):
    import websockets

    def out(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    conns = {}
    failures = []
    sem = asyncio.Semaphore(100)  # connects in flight: stay well under the listen backlog

    async def open_one(g):
        topics = topics_for(g, a.topics)
        url_mode = g % 2 == 0
        path = "/ws?subscribe=" + ",".join(topics) if url_mode else "/ws"
        async with sem:
            for attempt in range(3):
                try:
                    ws = await websockets.connect(
                        f"ws://{HOST}:{a.port}{path}", local_addr=(a.source, 0), compression=None,
                        ping_interval=None, open_timeout=30, close_timeout=2, max_queue=256)
                    break
                except OSError:
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.2)
            if not url_mode:
                await ws.send(json.dumps({"op": "subscribe", "args": topics}))
                acks = set()
                while len(acks) < len(topics):
                    m = await asyncio.wait_for(ws.recv(), 30)
                    d = json.loads(m)
                    if d.get("event") != "subscribe" or d.get("arg") not in topics:
                        raise TestFailure(f"conn {g}: expected subscribe acks, got {m[:200]}")
                    acks.add(d["arg"])
        conns[g] = (ws, topics)

    t0 = time.monotonic()
    results = await asyncio.gather(*(open_one(g) for g in range(a.first, a.first + a.count)),
                                   return_exceptions=True)
    errs = [f"conn {g}: {type(r).__name__}: {r}" for g, r in
            zip(range(a.first, a.first + a.count), results) if isinstance(r, BaseException)]
    out({"ready": len(conns), "errors": errs[:5], "nerrors": len(errs),
         "seconds": round(time.monotonic() - t0, 2)})
    if errs:
        return 1

    async def receive(g, ws, topics):
        nxt = {t: 1 for t in topics}
        total = a.messages * len(topics)
        got = 0
        try:
            while got < total:
                m = await ws.recv()
                if is_event(m):
                    continue  # e.g. acks of URL subscriptions
                d = json.loads(m)
                t = d.get("topic")
                if t not in nxt:
                    raise TestFailure(f"conn {g}: message of topic {t!r}, subscribed to {topics}")
                check_payload(m, t, nxt[t], MSG_BYTES, f"conn {g} ({a.source})")
                nxt[t] += 1
                got += 1
        except TestFailure as e:
            failures.append(str(e))
        except Exception as e:  # noqa: BLE001
            failures.append(f"conn {g}: {type(e).__name__}: {e} after {got}/{total} messages "
                            f"(progress {nxt}; close code {ws.close_code})")
        return got

    try:
        counts = await asyncio.wait_for(
            asyncio.gather(*(receive(g, ws, tp) for g, (ws, tp) in conns.items())), a.recv_timeout)
        complete = sum(1 for c, (_, tp) in zip(counts, conns.values()) if c == a.messages * len(tp))
    except asyncio.TimeoutError:
        complete = None
        failures.append(f"receive phase did not finish within {a.recv_timeout} s")
    out({"complete": complete, "failures": failures[:5], "nfailures": len(failures)})
    for ws, _ in conns.values():
        ws.transport.abort()
    return 0 if not failures else 1


def child_entry():
    p = argparse.ArgumentParser()
    p.add_argument("--child", action="store_true")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--topics", type=int, required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--recv-timeout", type=float, default=90)
    a = p.parse_args()
    # a child never outlives its budget, even if the parent is gone
    threading.Timer(a.recv_timeout + 90, lambda: os._exit(4)).start()
    rc = asyncio.run(child_main(a))
    os._exit(rc)


# ---------------------------------------------------------------------------------------------
# parent

class ChildProc:
    def __init__(self, argv, name):
        import subprocess
        self.name = name
        self.p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.msgs = []
        self.cv = threading.Condition()
        self.stderr = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                m = {"garbage": line.decode(errors="replace")}
            with self.cv:
                self.msgs.append(m)
                self.cv.notify_all()
        with self.cv:
            self.msgs.append(None)
            self.cv.notify_all()

    def _read_err(self):
        self.stderr = self.p.stderr.read()

    def wait_for(self, key, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for m in self.msgs:
                    if m is None:
                        fail(f"{self.name} exited (status {self.p.poll()}) before reporting {key!r}; "
                             f"stderr: {self.stderr.decode(errors='replace')[-2000:]}")
                    if key in m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"{self.name}: no {key!r} report within {timeout} s")
                self.cv.wait(left)


def parent_main(args):
    n, procs = args.connections, args.procs
    srv = Server(args.server, ["--shards", args.shards, "--ping-interval-ms", 600000,
                               "--idle-timeout-ms", 600000])
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    children, first = [], 0
    t0 = time.monotonic()
    for i, cnt in enumerate(per):
        src = f"127.0.0.{2 + i}"
        argv = [sys.executable, os.path.abspath(__file__), "--child", "--port", str(srv.port),
                "--source", src, "--first", str(first), "--count", str(cnt),
                "--topics", str(args.topics), "--messages", str(args.messages),
                "--recv-timeout", str(args.recv_timeout)]
        children.append(ChildProc(argv, f"client process {i} ({src}, conns {first}..{first + cnt - 1})"))
        first += cnt

    for c in children:
        m = c.wait_for("ready", 90)
        check(m["nerrors"] == 0, f"{c.name}: {m['nerrors']} connections failed to open/subscribe: "
                                 f"{m['errors']}")
        log(f"{c.name}: {m['ready']} connections ready in {m['seconds']} s")
    total_subs = sum(len(topics_for(g, args.topics)) for g in range(n))
    got = srv.wait_subscribers(total_subs, 30000)
    check(got >= total_subs, f"wait-subscribers {total_subs}: the server counts only {got}")
    st = srv.stats()
    log(f"all {n} connected in {time.monotonic() - t0:.1f} s; stats: {st}")
    check(st.get("sessions") == n, f"stats.sessions = {st.get('sessions')}, expected {n}")
    check(st.get("subscriptions") == total_subs,
          f"stats.subscriptions = {st.get('subscriptions')}, expected {total_subs}")

    t1 = time.monotonic()
    for t in range(args.topics):
        last = srv.publish(f"t{t}", args.messages, MSG_BYTES)
        check(last == args.messages, f"publish t{t}: last seq {last}, expected {args.messages}")
    problems = []
    for c in children:
        m = c.wait_for("complete", args.recv_timeout + 30)
        if m["nfailures"]:
            problems.append(f"{c.name}: {m['nfailures']} connections failed, "
                            f"{m['complete']} complete; first failures:\n    "
                            + "\n    ".join(m["failures"]))
        else:
            log(f"{c.name}: all {m['complete']} connections received every message")
    check(not problems, "\n".join(problems))
    deliveries = total_subs * args.messages
    log(f"{deliveries} deliveries received in {time.monotonic() - t1:.1f} s")
    st = srv.stats()
    log(f"stats: {st}")
    check(st.get("delivered", 0) >= deliveries,
          f"stats.delivered = {st.get('delivered')}, but clients received {deliveries} messages")
    for k in ("dropped_newest", "dropped_oldest", "conflated", "disconnected_slow"):
        check(st.get(k, 0) == 0, f"stats.{k} = {st.get(k)}, expected 0 (nothing may be lost): {st}")
    for c in children:
        try:
            rc = c.p.wait(timeout=30)
        except Exception:
            fail(f"{c.name} did not exit")
        check(rc == 0, f"{c.name} exited with {rc}")
    check(srv.alive(), "server died: " + srv.describe_death())


if __name__ == "__main__":
    if "--child" in sys.argv:
        child_entry()
    parser = base_parser("many connections")
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--procs", type=int, default=5)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--recv-timeout", type=float, default=60)
    run_test("many_connections", parent_main, parser)

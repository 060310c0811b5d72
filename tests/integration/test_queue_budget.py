#!/usr/bin/python3
"""The server-wide queue budget binds where per-client limits do not.

  /usr/bin/python3 tests/integration/test_queue_budget.py --server build/tests/integration/fanout-test-server
  (--policies drop_oldest,disconnect to choose; --stalled N)

For each policy a server runs with --queue-budget-bytes 8 MiB and per-client limits far above what
the budget allows (64 MiB, 1,000,000 frames each). STALLED raw-socket clients (SO_RCVBUF 4096, from
127.0.0.2 .. 127.0.0.9) subscribe to topic t and never read; FAST websockets clients subscribe and
read. The server publishes COUNT messages of MSG_BYTES in batches, each after every fast client has
received the previous one (so a fast client's queue holds at most a batch). Without the budget the
stalled clients' queues would hold COUNT frames each (their rings alone: STALLED x 32768 x 16 bytes,
~150 MiB). Asserted:
  * every fast client receives every message, in order, no gap, and stays connected;
  * the budget's counters moved (budget_dropped under drop_oldest, budget_disconnected under
    disconnect) and the accounted queue memory ends under 1.5 x the budget;
  * disconnect: a stalled client the budget closed gets, once it reads, close 1013 (try again
    later: the server's overload, not its own limit) with {"reason":"overload","retry_after_ms":N},
    N in [5000, 10000] (retry_after 10 s, jitter 0.5; issue 15, reconnect advice);
  * the server's RSS stays under baseline + budget + 24 MiB at every tenth batch (release builds;
    logged under sanitizers, whose quarantine is in RSS).
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (OP_CLOSE, ConnectionEnded, RawWS, Server, TestFailure,  # noqa: E402
                            WsClient, base_parser, check, check_payload, check_retry_advice, fail,
                            is_event, log, parse_close, run_test, short)

BUDGET = 8 << 20
RSS_SLACK_KB = 24 * 1024
N_FAST = 4
MSG_BYTES = 1000
COUNT = 20000
BATCH = 100  # below the budget's floor (256 frames): a fast client's queue is never cut
TOPIC = "t"
# Set by CMakeLists.txt in sanitizer builds, whose quarantine and shadow memory are in RSS.
SANITIZED = os.environ.get("TEST_UNDER_SANITIZER") == "1"


def check_rss(ok: bool, msg: str):
    if SANITIZED:
        if not ok:
            log(f"    (not checked under a sanitizer) {msg}")
        return
    check(ok, msg)


class FastReader:
    def __init__(self, client: WsClient):
        self.c = client
        self.next_seq = 1
        self.error = None
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        try:
            while self.next_seq <= COUNT:
                _, m = await self.c.next_data(120)
                check_payload(m, TOPIC, self.next_seq, MSG_BYTES, self.c.name)
                self.next_seq += 1
        except TestFailure as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001
            self.error = f"{type(e).__name__}: {e}"


async def wait_fast(readers, upto: int, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        bad = [r for r in readers if r.error]
        if bad:
            fail(f"fast client failed: {bad[0].error}")
        if all(r.next_seq > upto for r in readers):
            return
        if time.monotonic() > deadline:
            late = [(r.c.name, r.next_seq - 1) for r in readers if r.next_seq <= upto]
            fail(f"fast clients did not receive up to seq {upto} within {timeout} s: {late[:5]}")
        await asyncio.sleep(0.002)


async def run_policy(server_path: str, policy: str, stalled_n: int):
    srv = Server(server_path, ["--policy", policy, "--queue-budget-bytes", BUDGET,
                               "--max-queue-bytes", 64 << 20, "--max-queue-frames", 1000000, "--shards", 2,
                               "--write-timeout-ms", 600000, "--ping-interval-ms", 600000,
                               "--idle-timeout-ms", 600000, "--close-write-timeout-ms", 600000],
                 name=f"server[{policy}]")
    stalled = []
    try:
        fast = [await WsClient.open(srv.port, "/ws", f"fast{i}[{policy}]", compression=None) for i in range(N_FAST)]
        await asyncio.gather(*(c.subscribe(TOPIC) for c in fast))

        def open_stalled(i: int):
            s = RawWS(srv.port, rcvbuf=4096, source=f"127.0.0.{2 + i % 8}")
            s.send_text('{"op":"subscribe","args":["%s"]}' % TOPIC)
            t = s.recv_text(10)
            check(is_event(t) and '"subscribe"' in t, f"stalled client {i}: expected a subscribe ack, got {short(t)}")
            return s
        for i in range(stalled_n):
            stalled.append(await asyncio.to_thread(open_stalled, i))
        await srv.arequire_subscribers(N_FAST + stalled_n, 20000)
        base = await srv.astats()
        log(f"[{policy}] baseline: {base}")
        check(base["queue_budget_bytes"] == BUDGET, f"budget not in force: {base}")

        readers = [FastReader(c) for c in fast]
        peak_rss = base["rss_kb"]
        peak_memory = 0
        t0 = time.monotonic()
        for k in range(COUNT // BATCH):
            last = await srv.apublish(TOPIC, BATCH, MSG_BYTES)
            check(last == (k + 1) * BATCH, f"publish answered last seq {last}, expected {(k + 1) * BATCH}")
            await wait_fast(readers, last, 60)
            if k % 10 == 9:
                st = await srv.astats()
                peak_rss = max(peak_rss, st["rss_kb"])
                peak_memory = max(peak_memory, st["queue_memory_bytes"])
                check_rss(st["rss_kb"] <= base["rss_kb"] + BUDGET // 1024 + RSS_SLACK_KB,
                      f"[{policy}] after seq {last}: rss {st['rss_kb']} KiB > baseline {base['rss_kb']} KiB "
                      f"+ budget + {RSS_SLACK_KB} KiB; stats {st}")
        log(f"[{policy}] {COUNT} messages, fast clients complete in {time.monotonic() - t0:.1f} s")
        await asyncio.sleep(0.3)
        for c in fast:
            check(not c.pending_data(), f"{c.name}: messages after seq {COUNT}")
            check(not c.closed.is_set(), f"{c.name}: fast client was disconnected: {c.describe_close()}")

        st = await srv.astats()
        log(f"[{policy}] after: {st}; peak rss {peak_rss} KiB (baseline {base['rss_kb']}), "
            f"peak accounted {peak_memory >> 10} KiB")
        if policy == "disconnect":
            check(st["budget_disconnected"] > 0, f"[disconnect] budget_disconnected did not move: {st}")
            # A sample (reading all 300 takes long): each was closed with 1013 or is still open, and
            # at least as many closed as the budget's count allows for the sample.
            sample = stalled[:30]
            closes = await asyncio.gather(*(asyncio.to_thread(read_to_close, s) for s in sample))
            check(all(c is None or c[0] == 1013 for c in closes),
                  f"[disconnect] a stalled client closed with another code: {[c for c in closes if c]}")
            advice = [check_retry_advice("stalled client", c[1], "overload", 5000, 10000) for c in closes if c]
            least = max(0, st["budget_disconnected"] - (len(stalled) - len(sample)))
            check(len(advice) >= least, f"[disconnect] {len(advice)} of {len(sample)} sampled stalled clients got "
                                        f"1013, expected at least {least}")
            log(f"[disconnect] {len(advice)} of {len(sample)} sampled stalled clients got 1013 overload, "
                f"retry_after_ms {min(advice, default=None)}..{max(advice, default=None)}")
        else:
            check(st["budget_dropped"] > 0, f"[{policy}] budget_dropped did not move: {st}")
        check(st["queue_memory_bytes"] <= BUDGET * 3 // 2,
              f"[{policy}] accounted queue memory {st['queue_memory_bytes']} > 1.5 x budget {BUDGET}: {st}")
        await srv.aquit()
    finally:
        for s in stalled:
            s.close_socket()
        srv.kill()


def read_to_close(s: RawWS):
    """Reads what a stalled client was sent: its close frame (code, reason), or None when the
    connection is still open (quiet for 3 s) or ended without one."""
    while True:
        try:
            op, payload = s.recv_message(3)
        except (TimeoutError, ConnectionEnded, OSError):
            return None
        if op == OP_CLOSE:
            return parse_close(payload)


async def main(args):
    for policy in args.policies.split(","):
        await run_policy(args.server, policy, args.stalled)


if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--policies", default="drop_oldest,disconnect")
    p.add_argument("--stalled", type=int, default=300)
    run_test("queue_budget", main, p)

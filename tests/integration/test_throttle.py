#!/usr/bin/python3
"""Throttled subscriptions ("interval_ms"): at most one update per key per interval, newest wins, in
seq order; the URL form; bad values; recovery with `since` (replay, then throttled live); unsubscribe.

  /usr/bin/python3 tests/integration/test_throttle.py --server build/tests/integration/fanout-test-server

Clients are python3-websockets on 127.0.0.1. No timing is asserted: the per-key bound is a count
over the whole wall time of the run (k updates spaced an interval apart need (k-1) intervals).
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import Server, WsClient, check, log, parse_payload, run_test  # noqa: E402

SIZE = 100
INTERVAL_MS = 200
KEYS = 3


def keyed_data(c: WsClient, text, topic: str) -> tuple[int, str]:
    d = parse_payload(text, c.name)
    check(d.get("topic") == topic, f"{c.name}: expected topic {topic}, got {d}")
    return d["seq"], d.get("key", "")


async def drain_until(c: WsClient, topic: str, done, timeout: float = 10) -> list[tuple[int, str]]:
    """Data messages of `topic` until done(received) holds."""
    got = []
    deadline = time.monotonic() + timeout
    while not done(got):
        _, m = await c.next_data(max(0.1, deadline - time.monotonic()))
        got.append(keyed_data(c, m, topic))
    return got


async def ping(c: WsClient):
    """A round trip: whatever the server queued for this client before the pong has arrived."""
    await c.send_json({"op": "ping"})
    await c.expect_event("pong")


async def body(args):
    srv = Server(args.server, ["--shards", "2", "--max-intervals-per-topic", "2"])
    port = srv.port

    # ---- throttled beside unthrottled: at most one per key per interval, newest wins, seq order
    fast = await WsClient.open(port, "/ws", "fast", compression=None)
    await fast.subscribe("q")
    slow = await WsClient.open(port, "/ws", "slow", compression=None)
    await slow.send_json({"op": "subscribe", "args": ["q"], "interval_ms": INTERVAL_MS})
    _, ack = await slow.expect_event("subscribe", arg="q")
    check(ack.get("interval_ms") == INTERVAL_MS, f"the ack of a throttled subscribe says its interval: {ack}")
    # The URL form, on whichever shard it lands.
    url = await WsClient.open(port, f"/ws?subscribe=q&interval_ms={INTERVAL_MS}", "url", compression=None)
    _, ack = await url.expect_event("subscribe", arg="q")
    check(ack.get("interval_ms") == INTERVAL_MS, f"?interval_ms= is in the ack: {ack}")
    srv.require_subscribers(3)

    started = time.monotonic()
    last_of_key: dict[str, int] = {}
    published = 0
    for _ in range(40):  # ~2 s of bursts: 3 keys, 30 messages each burst
        last = int(srv.cmd(f"keyed q {KEYS} 30 {SIZE}", "published q").split()[2])
        published = last
        for i in range(30):
            last_of_key[f"k{i % KEYS}"] = last - 29 + i
        await asyncio.sleep(0.05)  # paces the publisher; nothing is asserted about it
    log(f"published {published} messages to q over {KEYS} keys")

    everything = await drain_until(fast, "q", lambda g: len(g) == published)
    check([s for s, _ in everything] == list(range(1, published + 1)), "the unthrottled client got every message")

    for c in (slow, url):
        # Newest wins: the last value of every key arrives (after its lane's next tick).
        newest: dict[str, int] = {}

        def have_newest(g, newest=newest):
            if g:
                newest[g[-1][1]] = g[-1][0]
            return all(newest.get(k) == s for k, s in last_of_key.items())

        got = await drain_until(c, "q", have_newest)
        elapsed = time.monotonic() - started
        seqs = [s for s, _ in got]
        check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
              f"{c.name}: throttled updates out of seq order or repeated: {seqs[:40]}")
        per_key = {k: sum(1 for _, kk in got if kk == k) for k in last_of_key}
        bound = int(elapsed * 1000 / INTERVAL_MS) + 2
        check(all(n <= bound for n in per_key.values()),
              f"{c.name}: more than one update per key per {INTERVAL_MS} ms: {per_key} in {elapsed:.2f} s (bound {bound})")
        check(len(got) < published // 4, f"{c.name}: {len(got)} of {published} delivered: not conflated")
        log(f"{c.name}: {len(got)} updates of {published} ({per_key}) in {elapsed:.2f} s")
    st = srv.stats()
    check(st["throttle_flushes"] > 0 and st["throttle_conflated"] > 0, f"throttle counters: {st}")

    # ---- bad values: out of range (4422), not a number (4002), in JSON and in the URL
    for bad, code in ((10, 4422), (3_600_000, 4422), ("fast", 4002), (-5, 4002), (1.5, 4002)):
        await slow.send_json({"op": "subscribe", "args": ["other"], "interval_ms": bad})
        await slow.expect_event("error", code=code)
    for bad, code in (("abc", 4002), ("5", 4422), ("%22%7D", 4002)):
        c = await WsClient.open(port, f"/ws?subscribe=u&interval_ms={bad}", f"url-{bad}", compression=None)
        await c.expect_event("error", code=code)
        await ping(c)
        check(not c.pending_data(), f"{c.name}: data after a refused subscribe")
        await c.ws.close()

    # ---- distinct intervals per topic per shard are bounded (--max-intervals-per-topic 2)
    refused = 0
    # Several sessions on the same shard hold lanes at once: the third distinct interval is refused.
    holders = []
    for ms in (300, 400, 500, 600, 700):
        h = await WsClient.open(port, "/ws", f"lane-{ms}", compression=None)
        await h.send_json({"op": "subscribe", "args": ["lanes"], "interval_ms": ms})
        _, d = await h.next_event(10)
        if d.get("event") == "error":
            check(d.get("code") == 4422 and d.get("arg") == "lanes", f"too many intervals: {d}")
            refused += 1
        else:
            check(d.get("event") == "subscribe" and d.get("interval_ms") == ms, f"lane {ms}: {d}")
        holders.append(h)
    check(refused >= 1, "5 distinct intervals over 2 shards with at most 2 per shard: some must be refused")
    for h in holders:
        await h.ws.close()

    # ---- recovery: since replays every missed message unthrottled, then live is throttled
    r1 = await WsClient.open(port, "/ws", "r1", compression=None)
    await r1.send_json({"op": "subscribe", "args": ["r"], "interval_ms": INTERVAL_MS})
    await r1.expect_event("subscribe", arg="r", interval_ms=INTERVAL_MS)
    srv.cmd(f"keyed r 2 10 {SIZE}", "published r")
    got = await drain_until(r1, "r", lambda g: g and g[-1][0] == 10)
    check([s for s, _ in got] == sorted(s for s, _ in got), f"r1 order: {got}")
    await r1.ws.close()
    srv.cmd(f"keyed r 2 20 {SIZE}", "published r")  # 11..30 while away
    r2 = await WsClient.open(port, "/ws", "r2", compression=None)
    await r2.send_json({"op": "subscribe", "args": ["r"], "interval_ms": INTERVAL_MS, "since": {"r": 10}})
    await r2.expect_event("subscribe", arg="r", seq=30, interval_ms=INTERVAL_MS)
    replay = await drain_until(r2, "r", lambda g: len(g) == 20)
    check([s for s, _ in replay] == list(range(11, 31)), f"the replay is every missed message: {replay}")
    srv.cmd(f"keyed r 2 40 {SIZE}", "published r")  # 31..70: throttled live, k0 ends at 69, k1 at 70
    live = await drain_until(r2, "r", lambda g: {69, 70} <= {s for s, _ in g})
    seqs = [s for s, _ in live]
    check(seqs == sorted(seqs) and seqs[0] > 30, f"live after the replay continues in order: {seqs}")
    check(len(live) < 40, f"live after the replay is throttled: {len(live)} of 40")

    # ---- unsubscribe: no more data; the topic's lane goes with its last member
    await slow.send_json({"op": "unsubscribe", "args": ["q"]})
    await slow.expect_event("unsubscribe", arg="q")
    await url.send_json({"op": "unsubscribe", "args": ["q"]})
    await url.expect_event("unsubscribe", arg="q")
    before = srv.stats()["throttle_flushes"]
    srv.cmd(f"keyed q {KEYS} 30 {SIZE}", "published q")
    await drain_until(fast, "q", lambda g: len(g) == 30)
    # A new throttled member on a fresh lane: its first tick comes at once, then one per interval.
    late = await WsClient.open(port, "/ws", "late", compression=None)
    await late.send_json({"op": "subscribe", "args": ["q"], "interval_ms": INTERVAL_MS})
    await late.expect_event("subscribe", arg="q")
    last = int(srv.cmd(f"keyed q 1 5 {SIZE}", "published q").split()[2])
    got = await drain_until(late, "q", lambda g: g and g[-1][0] == last)
    check(len(got) <= 2, f"late: 5 updates of one key within a tick or two: {got}")
    for c in (slow, url):
        await ping(c)
        leftover = [keyed_data(c, m, "q") for _, m in c.pending_data()]
        check(all(s <= published for s, _ in leftover), f"{c.name}: data after unsubscribe: {leftover}")
    st = srv.stats()
    check(st["subscriptions"] >= 3, f"subscriptions: {st}")
    log(f"flushes {before} -> {st['throttle_flushes']}, conflated {st['throttle_conflated']}")
    for c in (fast, slow, url, late, r2):
        await c.ws.close()
    check(srv.quit() == 0, "server exit code")


if __name__ == "__main__":
    run_test("throttle", body)

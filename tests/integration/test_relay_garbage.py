#!/usr/bin/python3
"""fanout-relay against an upstream that sends garbage.

  /usr/bin/python3 tests/integration/test_relay_garbage.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Checks: the simulator's `garbage-json` (a text frame of invalid JSON) is dropped by the relay's
router: the upstream connection stays up (no down line, no seq gap at the clients across it), the
clients never see it and keep receiving the simulator's bytes. `garbage-frame` (a frame with the
reserved opcode 0x3) makes the relay fail that connection (down line: protocol error) and reconnect;
the clients stay connected and resume with the simulator's bytes, seq +1 from then on.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, check_no_stray_events, check_open,  # noqa: E402
                           close_all, declare_args, log, relay_client, run_relay_test, sim_client,
                           subscribe_msg, topic_of)

STREAMS = [("tickers", "BTC-USDT"), ("trades", "ETH-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]


async def body(args):
    checks = Checks()
    sim = FeedSim(args.sim, rate=50)
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 1])
    live, _ = await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    await sim.wait_stats(lambda st: st["subscriptions"] == len(STREAMS), "the relay subscribed")
    clients = [await relay_client(relay.port, TOPICS, "client-A(json)"),
               await relay_client(relay.port, TOPICS[1:], "client-B(url)", via_url=True)]
    for c in clients:
        await c.count_each(10)
    refs = []

    async def catch_up(name: str, after_index=None):
        """A fresh direct client: what it gets first was generated after the garbage; every relay
        client must get past it, with the simulator's bytes. Returns the reference."""
        ref = await sim_client(sim.port, STREAMS, name)
        refs.append(ref)
        await ref.count_each(1)
        for c in clients:
            for t in c.topics:
                first = ref.seqs(t)[0]
                await c.seq_at_least(t, first + 5)
                await ref.seq_at_least(t, c.seqs(t)[-1])
                n = c.check_same_bytes(ref, t, min_seq=first)
                check(n >= 6, f"{c.name}: {t}: only {n} messages since seq {first}")
        return ref

    async def garbage_json():
        mark = relay.line_count()
        n = await sim.acommand_count("garbage-json")
        check(n == 1, f"garbage-json went to {n} connections, expected the relay's 1")
        await catch_up("direct-client-1")
        for c in clients:
            for t in c.topics:
                c.check_contiguous(t, what="across garbage-json (the upstream must stay up)")
        down = relay.find(Relay.down_re("upstream"), mark)
        check(down is None, f"garbage-json took the upstream down: {down}")
        relay.require_alive("after garbage-json")
        check_open(*clients, when="after garbage-json")
        check_no_stray_events(*clients)

    async def garbage_frame():
        mark = relay.line_count()
        await close_all(*refs)  # a direct client would be failed by the bad frame too
        await sim.wait_stats(lambda st: st["connections"] == 1, "only the relay connected")
        n = await sim.acommand_count("garbage-frame")
        check(n == 1, f"garbage-frame went to {n} connections, expected the relay's 1")
        i, line = await relay.wait_line(Relay.down_re("upstream"), after=mark,
                                        what="down after the reserved opcode")
        log(f"    {line}")
        check("protocol error" in line, f"down line does not say protocol error: {line!r}")
        _, line = await relay.wait_line(Relay.live_re("upstream"), after=i + 1, what="live again")
        log(f"    {line}")
        await sim.wait_stats(lambda st: st["subscriptions"] == len(STREAMS),
                             "the relay subscribed again")
        ref = await catch_up("direct-client-2")
        for c in clients:
            for t in c.topics:
                start = next(j for j, (q, _) in enumerate(c.got[t]) if q == ref.seqs(t)[0])
                c.check_contiguous(t, start, "after the reconnect")
                b = c.breaks(t)
                check(len(b) <= 1, f"{c.name}: {t}: seq breaks {b} for one upstream failure")
                log(f"    {c.name} {t}: {len(c.got[t])} messages, seq breaks {b}")
        relay.require_alive("after garbage-frame")
        check_open(*clients, when="after garbage-frame")
        check_no_stray_events(*clients)

    await checks.arun("garbage-json: dropped, upstream stays up, no gap", garbage_json)
    await checks.arun("garbage-frame: protocol error, reconnect, clients resume", garbage_frame)
    await close_all(*clients, *refs)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("relay_garbage", body)

#!/usr/bin/python3
"""fanout-feed-sim -> fanout-relay -> python-websockets clients, by topic, byte for byte.

  /usr/bin/python3 tests/integration/test_relay_fanout.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

The simulator runs as its own process; the relay subscribes to four streams with --subscribe and
routes them with --route '{arg.channel}:{arg.instId}'. Three relay clients subscribe to different
topic sets (URL query and JSON op). Checks: each client gets exactly the topics it asked for, with
seq strictly +1 per topic (nothing lost, duplicated or reordered), every message byte for byte what
a client connected straight to the simulator got for the same seq; the simulator's subscribe acks
are not forwarded; the stats line counts the clients; SIGTERM exits 0.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, check_no_stray_events, check_open,  # noqa: E402
                           close_all, declare_args, log, relay_client, run_relay_test, sim_client,
                           subscribe_msg, topic_of)

STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT"),
           ("trades", "BTC-USDT"), ("trades", "ETH-USDT")]
PER_TOPIC = 40  # messages per topic each client must get


async def body(args):
    checks = Checks()
    sim = FeedSim(args.sim, rate=50)
    # The reference client subscribes first (so it also sees everything the relay sees).
    ref = await sim_client(sim.port, STREAMS, "direct-client")
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 1])
    live, _ = await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    check(sim.url in relay.lines()[live], f"live line names another URL: {relay.lines()[live]!r}")

    clients = [
        await relay_client(relay.port, ["tickers:BTC-USDT"], "client-A(url)", via_url=True),
        await relay_client(relay.port, ["trades:ETH-USDT"], "client-B(json)"),
        await relay_client(relay.port, ["tickers:BTC-USDT", "trades:ETH-USDT", "tickers:ETH-USDT"],
                           "client-C(three)"),
    ]
    for c in clients:
        await c.count_each(PER_TOPIC)

    async def in_order():
        for c in clients:
            for t in sorted(c.topics):
                c.check_contiguous(t)
                log(f"    {c.name} {t}: seq {c.seqs(t)[0]}..{c.seqs(t)[-1]} contiguous")

    async def byte_exact():
        # The reference must have got at least as far as every relay client.
        for c in clients:
            for t in c.topics:
                await ref.seq_at_least(t, c.seqs(t)[-1])
        for t in (topic_of(s) for s in STREAMS):
            ref.check_contiguous(t, what="(reference client, straight from the simulator)")
        n = sum(c.check_same_bytes(ref, t) for c in clients for t in c.topics)
        log(f"    {n} relayed messages identical to the simulator's")

    async def same_topic_same_bytes():
        a, c = clients[0], clients[2]
        t = "tickers:BTC-USDT"
        common = set(a.texts(t)) & set(c.texts(t))
        check(len(common) >= PER_TOPIC // 2, f"clients A and C share only {len(common)} seqs of {t}")
        check(all(a.texts(t)[q] == c.texts(t)[q] for q in common),
              "clients A and C got different bytes for the same seq")

    async def no_upstream_control_forwarded():
        check_no_stray_events(*clients)
        check_open(*clients)
        check(relay.find(Relay.down_re("upstream"), live) is None,
              f"upstream went down during the test: {relay.find(Relay.down_re('upstream'), live)}")

    async def stats_line():
        _, line = await relay.wait_line(r"stats: clients 3 topics \d+ published [1-9]\d*/s",
                                        after=live, timeout=10, what="stats line with 3 clients")
        log(f"    {line}")

    await checks.arun("every client: its topics only, seq +1 per topic", in_order)
    await checks.arun("relayed bytes == the simulator's bytes for the same seq", byte_exact)
    await checks.arun("two clients of one topic get the same bytes", same_topic_same_bytes)
    await checks.arun("no upstream acks forwarded, no close, upstream stayed live",
                      no_upstream_control_forwarded)
    await checks.arun("stats line counts the clients and the publishing", stats_line)

    async def sigterm():
        rc = await relay.aterminate()
        check(rc == 0, f"relay exited with {rc} on SIGTERM; " + relay.describe_death())
    await checks.arun("SIGTERM: exit 0", sigterm)
    await close_all(ref, *clients)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("relay_fanout", body)

#!/usr/bin/python3
"""fanout-relay hot standby: two upstream connections to one stream, each message delivered once,
and losing one connection loses nothing.

  /usr/bin/python3 tests/integration/test_relay_standby.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

A TOML file with standby = true and [upstream.route] key = "data.0.instId", seq = "data.0.seq": the
relay keeps two connections (logged as NAME#1 and NAME#2) to one simulator, which sends the same
bytes on both. Checks: with both live, clients get every seq exactly once, in order; the simulator's
`drop-one` (TCP reset of its oldest connection, so first one, then the other) makes the relay log
that connection down and bring it back, while the clients see no gap, no duplicate and no reorder
across it, and still get the simulator's bytes.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, check_no_stray_events, check_open,  # noqa: E402
                           close_all, declare_toml, log, relay_client, run_relay_test, sim_client,
                           subscribe_msg, topic_of, write_file)

STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT"), ("trades", "ETH-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]
RATE = 50


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-standby-") as tmp:
        await run(args, checks, tmp)
    checks.finish()


async def run(args, checks: Checks, tmp: str):
    sim = FeedSim(args.sim, rate=RATE)
    config = write_file(tmp, "standby.toml", f"""\
[server]
listen = ["127.0.0.1:0"]
stats_interval_s = 1

{declare_toml(STREAMS)}
[[upstream]]
name = "sb"
urls = ["{sim.url}"]
subscribe = ['{subscribe_msg(STREAMS)}']
standby = true
backoff_initial_ms = 20
backoff_max_ms = 100

[upstream.route]
topic = "{ROUTE}"
key = "data.0.instId"
seq = "data.0.seq"
""")
    relay = Relay(args.relay, ["--config", config])
    for n in (1, 2):
        _, line = await relay.wait_line(Relay.live_re(f"sb#{n}"), what=f"connection sb#{n} live")
        log(f"    {line}")
    await sim.wait_stats(lambda st: st["connections"] == 2 and st["subscriptions"] == 2 * len(STREAMS),
                         "two relay connections, each subscribed to every stream")
    clients = [await relay_client(relay.port, TOPICS, "client-A(json)"),
               await relay_client(relay.port, TOPICS[:1], "client-B(url)", via_url=True)]
    refs = []

    def check_exactly_once(when: str):
        for c in clients:
            for t in c.topics:
                c.check_no_duplicates(t)
                c.check_contiguous(t, what=when)

    async def once():
        for c in clients:
            await c.count_each(30)
        check_exactly_once("with two upstream connections")
        log("    " + ", ".join(f"{t} seq {clients[0].seqs(t)[0]}..{clients[0].seqs(t)[-1]}"
                               for t in TOPICS))

    async def drop_one(round_: int):
        mark = relay.line_count()
        await close_all(*refs)  # the reference clients are newer, but keep the count exact
        await sim.wait_stats(lambda st: st["connections"] == 2, "only the relay's two connections")
        n = await sim.acommand_count("drop-one")
        check(n == 1, f"drop-one closed {n} connections")
        i, line = await relay.wait_line(r"upstream sb#[12] down \(", after=mark,
                                        what="one standby connection down")
        log(f"    {line}")
        name = line.split("upstream ", 1)[1].split(" ", 1)[0]
        _, line = await relay.wait_line(Relay.live_re(name), after=i + 1, what=f"{name} live again")
        log(f"    {line}")
        others = relay.find_all(r"upstream sb#[12] down \(", after=mark)
        check(len(others) == 1, f"drop-one: more than one connection went down: {others}")
        await sim.wait_stats(lambda st: st["connections"] == 2 and st["subscriptions"] == 2 * len(STREAMS),
                             "both relay connections subscribed again")
        # Everything generated from now on reaches the relay on both connections.
        ref = await sim_client(sim.port, STREAMS, f"direct-client-{round_}")
        refs.append(ref)
        await ref.count_each(1)
        for c in clients:
            for t in c.topics:
                await c.seq_at_least(t, ref.seqs(t)[0] + 10)
                await ref.seq_at_least(t, c.seqs(t)[-1])
                c.check_same_bytes(ref, t, min_seq=ref.seqs(t)[0])
        check_exactly_once(f"across drop-one #{round_} ({name} dropped)")
        check_open(*clients, when=f"after drop-one #{round_}")
        return name

    await checks.arun("two connections: every seq exactly once, in order", once)
    first = await checks.arun("drop-one (oldest connection): no gap, no duplicate", drop_one, 1)
    second = await checks.arun("drop-one again (the other connection): no gap, no duplicate",
                               drop_one, 2)

    async def summary():
        if first and second:
            check(first != second, f"drop-one twice dropped {first} both times: the oldest "
                                   f"connection should have been the other one the second time")
        check_no_stray_events(*clients)
        relay.require_alive()
        for c in clients:
            for t in c.topics:
                log(f"    {c.name} {t}: {len(c.got[t])} messages, seq "
                    f"{c.seqs(t)[0]}..{c.seqs(t)[-1]}, no gap, no duplicate")
    await checks.arun("both connections were dropped in turn; clients complete", summary)

    async def restart():
        # The source restarts (both connections down) and its seqs start over: the relay must not
        # take the new messages for duplicates of the old ones.
        nonlocal sim
        await close_all(*refs)
        refs.clear()
        c = clients[0]
        before = {t: c.seqs(t)[-1] for t in TOPICS}
        counts = {t: len(c.got[t]) for t in TOPICS}
        mark = relay.line_count()
        port = sim.port
        sim.kill()
        await relay.wait_line(r"upstream sb#[12] down \(", after=mark, what="a connection down after the kill")
        sim = FeedSim(args.sim, port=port, rate=RATE, name="sim-restarted")
        for n in (1, 2):
            await relay.wait_line(Relay.live_re(f"sb#{n}"), after=mark, what=f"sb#{n} live after the restart")
        await sim.wait_stats(lambda st: st["subscriptions"] == 2 * len(STREAMS), "resubscribed after the restart")
        ref = await sim_client(sim.port, STREAMS, "direct-client-restart")
        refs.append(ref)
        await ref.count_each(1)
        for t in TOPICS:
            first_new = ref.seqs(t)[0]
            check(first_new < before[t], f"{t}: the restarted simulator should count from 1 again "
                                         f"(first {first_new}, before {before[t]})")
            await c.seq_at_least(t, first_new + 5, timeout=30, start=counts[t])
            after = c.seqs(t)[counts[t]:]
            check(any(q <= first_new + 5 for q in after),
                  f"{t}: new messages after the restart were dropped as duplicates: client got {after[:10]} "
                  f"after the restart, the simulator's first new seq was {first_new}")
        check_open(*clients, when="after the source restarted")
    await checks.arun("source restart (seqs start over): new messages are not taken for duplicates", restart)
    await close_all(*clients, *refs)


if __name__ == "__main__":
    run_relay_test("relay_standby", body)

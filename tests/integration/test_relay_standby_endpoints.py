#!/usr/bin/python3
"""fanout-relay hot standby over two endpoints (issue 15, item 7): the pair's connections sit on
different endpoints, and killing one endpoint loses nothing.

  /usr/bin/python3 tests/integration/test_relay_standby_endpoints.py \
      --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Two simulators, A then B (A started first, so its seqs run ahead and it is the one whose messages
reach the clients), and one [[upstream]] with urls = [A, B] and standby = true. Checks:
- sb#1 is live on A and sb#2 on B (before the fix both started on A);
- A is killed by PID: sb#1 goes down, sb#2 carries on, and a client sees every seq once, in order,
  across the kill (the dedupe drops B's seqs that A delivered already);
- while A is down, sb#1 keeps retrying A rather than joining its partner on B (B has one
  connection), so the pair is on two endpoints again as soon as A is back.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, check_open, close_all,  # noqa: E402
                           declare_toml, log, relay_client, run_relay_test, subscribe_msg, topic_of,
                           write_file)

# Streams the simulator has from its start (others start counting at the first subscribe).
STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]
RATE = 50


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-standby-ep-") as tmp:
        await run(args, checks, tmp)
    checks.finish()


async def run(args, checks: Checks, tmp: str):
    sim_a = FeedSim(args.sim, rate=RATE, name="sim-A")
    sim_b = FeedSim(args.sim, rate=RATE, name="sim-B")
    config = write_file(tmp, "standby.toml", f"""\
[server]
listen = ["127.0.0.1:0"]

{declare_toml(STREAMS)}
[[upstream]]
name = "sb"
urls = ["{sim_a.url}", "{sim_b.url}"]
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

    async def apart():
        for name, sim in (("sb#1", sim_a), ("sb#2", sim_b)):
            _, line = await relay.wait_line(Relay.live_re(name), what=f"{name} live")
            log(f"    {line}")
            check(f":{sim.port}/" in line, f"{name} should be live on {sim.name} (port {sim.port}): {line}")
        for sim in (sim_a, sim_b):
            await sim.wait_stats(lambda st: st["connections"] == 1 and st["subscriptions"] == len(STREAMS),
                                 f"{sim.name}: one relay connection, subscribed")
    await checks.arun("standby pair: sb#1 on A, sb#2 on B", apart)

    client = await relay_client(relay.port, TOPICS, "client")

    async def kill_a():
        await client.count_each(30)
        before = {t: len(client.got[t]) for t in TOPICS}
        mark = relay.line_count()
        log(f"    killing sim-A (pid {sim_a.pid})")
        sim_a.kill()
        _, line = await relay.wait_line(r"upstream sb#1 down \(", after=mark, what="sb#1 down after the kill")
        log(f"    {line}")
        # Well past the seqs A had sent: the client now lives on B's messages.
        await client.more_each(2 * RATE)
        for t in TOPICS:
            client.check_no_duplicates(t)
            # From the last message before the kill on. Before it, the two simulators (which number
            # their streams independently, from their own start) may swap the lead when one stalls
            # and slips its schedule (seen under ASan on a loaded machine): not the kill's doing.
            client.check_contiguous(t, start=max(0, before[t] - 1), what="across the kill of endpoint A")
            s = client.seqs(t)
            log(f"    {t}: seq {s[0]}..{s[-1]}, {len(s)} messages ({len(s) - before[t]} after the kill), "
                f"0 gaps, 0 duplicates")
        check(relay.find(r"upstream sb#2 down \(", after=mark) is None, "sb#2 (on B) went down too")
        check(relay.find(Relay.live_re("sb#1"), after=mark) is None,
              "sb#1 went live again although A is dead: it must not join its partner on B")
        st = await sim_b.astats()
        check(st["connections"] == 1, f"sim-B should still have one relay connection, has {st['connections']}")
        check_open(client, when="after the kill of A")
    await checks.arun("kill A: the survivor on B carries on, 0 gaps, 0 duplicates", kill_a)
    await close_all(client)
    relay.require_alive()


if __name__ == "__main__":
    run_relay_test("relay_standby_endpoints", body)

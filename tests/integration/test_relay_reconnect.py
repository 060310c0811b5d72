#!/usr/bin/python3
"""fanout-relay keeps its clients through upstream failures: a killed and restarted simulator, a
dropped connection, a stream gone silent.

  /usr/bin/python3 tests/integration/test_relay_reconnect.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Part 1 (flags): the simulator process is SIGKILLed mid-stream and restarted on the same port; then
told to `drop` its connections (TCP reset). Each time the relay logs `upstream ... down (...)` and
later `... live` again, re-sends its subscribe unasked (the new simulator sees the subscriptions),
the downstream clients stay connected, and they receive the new stream: the exact bytes a client
connected straight to the (new) simulator gets, seq +1 from then on. Per topic the client's seq
breaks at most once per upstream failure (messages published while the upstream was down are not
invented).

Part 2 (a TOML file): stale_timeout_ms = 500, heartbeat = "none"; the simulator is told
`silent on`: the relay logs a `stale` down line and reconnects (a later live line); after
`silent off` data flows to the clients again.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, check_no_stray_events, check_open,  # noqa: E402
                           close_all, declare_args, declare_toml, log, relay_client,
                           run_relay_test, sim_client, subscribe_msg, topic_of, write_file)

STREAMS = [("tickers", "BTC-USDT"), ("trades", "ETH-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]
RATE = 50


async def resumed(relay: Relay, sim: FeedSim, clients, name: str, upstream: str, after: int):
    """After a failure whose down line is at index >= after: wait for the relay to be live again
    and subscribed at `sim`, then check every client gets the new stream byte for byte.
    Returns (index of the live line, the reference client)."""
    down, line = await relay.wait_line(Relay.down_re(upstream), after=after, what="upstream down")
    log(f"    down: {line}")
    live, line = await relay.wait_line(Relay.live_re(upstream), after=down + 1,
                                       what="upstream live again")
    log(f"    live again: {line}")
    # The relay re-sent its subscribe by itself: the simulator has its subscriptions.
    await sim.wait_stats(lambda st: st["subscriptions"] >= len(STREAMS),
                         f"{len(STREAMS)} subscriptions from the relay")
    # Opened only now, so what it gets next was generated after the relay subscribed: the relay
    # got it too and must forward exactly these bytes.
    ref = await sim_client(sim.port, STREAMS, name)
    await ref.count_each(1)
    first = {t: ref.seqs(t)[0] for t in TOPICS}
    for c in clients:
        for t in TOPICS:
            text = ref.texts(t)[first[t]]
            await c.until(lambda s, t=t, text=text: any(m == text for _, m in s.got[t]),
                          f"{t}: the message seq {first[t]} of the new upstream connection "
                          f"(as {ref.name} got it)")
            await c.more_each(5, topics=[t])
            # From that message on: contiguous and the simulator's bytes.
            start = next(i for i, (_, m) in enumerate(c.got[t]) if m == text)
            c.check_contiguous(t, start, "after the upstream came back")
            await ref.seq_at_least(t, c.seqs(t)[-1])
            c.check_same_bytes(ref, t, start)
    return live, ref


async def part1(args, checks: Checks):
    sim = FeedSim(args.sim, rate=RATE, name="feed-sim-1")
    port = sim.port
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 1],
                  name="relay-1")
    live, _ = await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    clients = [await relay_client(relay.port, TOPICS, "client-A(json)"),
               await relay_client(relay.port, TOPICS, "client-B(url)", via_url=True)]
    for c in clients:
        await c.count_each(10)
        for t in TOPICS:
            c.check_contiguous(t, what="before any failure")
    refs = []

    async def kill_and_restart():
        nonlocal sim, live
        mark = relay.line_count()
        log(f"    SIGKILL feed-sim-1 (pid {sim.pid})")
        sim.kill()
        # Restart on the same port only once the relay has noticed, so it really lost the upstream.
        await relay.wait_line(Relay.down_re("upstream"), after=mark, what="down after SIGKILL")
        sim = FeedSim(args.sim, port=port, rate=RATE, name="feed-sim-2")
        check(sim.port == port, f"restarted simulator listens on {sim.port}, not {port}")
        live, ref = await resumed(relay, sim, clients, "direct-client-2", "upstream", mark)
        refs.append(ref)
        check_open(*clients, when="after the simulator was restarted")

    async def drop():
        nonlocal live
        mark = relay.line_count()
        await close_all(*refs)  # so only the relay's connection is dropped
        await sim.wait_stats(lambda st: st["connections"] == 1, "only the relay connected")
        n = await sim.acommand_count("drop")
        check(n == 1, f"drop closed {n} connections, expected the relay's 1")
        live, ref = await resumed(relay, sim, clients, "direct-client-3", "upstream", mark)
        refs.append(ref)
        check_open(*clients, when="after drop")

    async def overall():
        # Two upstream failures: per topic, at most two places where seq is not previous + 1.
        for c in clients:
            for t in TOPICS:
                b = c.breaks(t)
                check(len(b) <= 2, f"{c.name}: {t}: {len(b)} seq breaks for 2 upstream "
                                   f"failures: {b}")
                log(f"    {c.name} {t}: {len(c.got[t])} messages, seq breaks {b}")
        check_no_stray_events(*clients)
        check_open(*clients)
        relay.require_alive("after the upstream failures")

    await checks.arun("SIGKILL the simulator, restart it on the same port: relay resumes",
                      kill_and_restart)
    await checks.arun("simulator `drop`: relay reconnects and resumes", drop)
    await checks.arun("clients never closed, at most one seq break per failure", overall)
    await close_all(*clients, *refs)
    sim.kill()
    relay.kill()


async def part2(args, checks: Checks, tmp: str):
    sim = FeedSim(args.sim, rate=RATE, name="feed-sim-quiet")
    subscribe = subscribe_msg(STREAMS)
    config = write_file(tmp, "stale.toml", f"""\
[server]
listen = ["127.0.0.1:0"]
stats_interval_s = 1

{declare_toml(STREAMS)}
[[upstream]]
name = "quiet"
urls = ["{sim.url}"]
subscribe = ['{subscribe}']
heartbeat = "none"
stale_timeout_ms = 500
backoff_initial_ms = 20
backoff_max_ms = 100

[upstream.route]
topic = "{ROUTE}"
""")
    relay = Relay(args.relay, ["--config", config], name="relay-stale")
    live, _ = await relay.wait_line(Relay.live_re("quiet"), what="upstream live")
    client = await relay_client(relay.port, TOPICS, "client-S")
    await client.count_each(10)
    for t in TOPICS:
        client.check_contiguous(t, what="before silence")
    before = {t: len(client.got[t]) for t in TOPICS}

    async def stale():
        await sim.acommand("silent on")
        i, line = await relay.wait_line(r"upstream quiet down \(.*stale", after=live,
                                        what="a stale down line")
        log(f"    {line}")
        j, line = await relay.wait_line(Relay.live_re("quiet"), after=i + 1,
                                        what="live again after going stale")
        log(f"    {line}")
        check_open(client, when="while the upstream was stale")

    async def data_again():
        await sim.acommand("silent off")
        ref = await sim_client(sim.port, STREAMS, "direct-client-S")
        await ref.count_each(1)
        for t in TOPICS:
            first = ref.seqs(t)[0]
            await client.seq_at_least(t, first, start=before[t])
            await client.more_each(5, topics=[t])
            await ref.seq_at_least(t, client.seqs(t)[-1])
            n = client.check_same_bytes(ref, t, before[t], min_seq=first)
            s = client.seqs(t)
            check(all(b > a for a, b in zip(s, s[1:])), f"{t}: seq not increasing: {s}")
            log(f"    {t}: {n} messages after `silent off`, as the simulator sent them")
        check_open(client, when="after silent off")
        check_no_stray_events(client)
        await close_all(ref)

    await checks.arun("silent upstream: stale down line, reconnect", stale)
    await checks.arun("after `silent off`: data flows to the client again", data_again)
    await close_all(client)
    sim.kill()
    relay.kill()


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-reconnect-") as tmp:
        await part1(args, checks)
        await part2(args, checks, tmp)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("relay_reconnect", body)

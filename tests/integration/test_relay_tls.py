#!/usr/bin/python3
"""fanout-relay with a wss:// upstream: certificate verification against a CA file or the system
store.

  /usr/bin/python3 tests/integration/test_relay_tls.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

A throwaway CA and a server certificate (SAN IP:127.0.0.1) are made with the openssl command line;
the simulator serves wss with them. Checks: a relay given --ca-file goes live and its clients get
exactly the bytes a python client verifying the same CA gets from the simulator, seq +1; a relay
without --ca-file (the system store, which does not know the CA) never goes live, logs a TLS
certificate failure on each attempt, keeps running and answers GET /healthz with 200; a relay
with --insecure goes live (so the failure above is the verification, nothing else).
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import http_exchange  # noqa: E402
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, check_no_stray_events, check_open,  # noqa: E402
                           close_all, declare_args, log, relay_client, run_relay_test, sim_client,
                           subscribe_msg, topic_of)
from test_tls import make_certs, trusting_context, wss_client  # noqa: E402

STREAMS = [("tickers", "BTC-USDT"), ("trades", "ETH-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-tls-") as tmp:
        await run(args, checks, tmp)
    checks.finish()


async def run(args, checks: Checks, tmp: str):
    certs = make_certs(tmp)
    sim = FeedSim(args.sim, rate=50, args=["--tls-cert", certs["cert"], "--tls-key", certs["key"]])
    url = f"wss://127.0.0.1:{sim.port}/ws"
    common = ["--upstream", url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS), "--route", ROUTE,
              "--listen", "127.0.0.1:0"]
    ref = await sim_client(sim.port, STREAMS, "direct-wss-client",
                           client=await wss_client(sim.port, "/ws", trusting_context(certs["ca"]),
                                                   "direct-wss-client"))
    trusting = Relay(args.relay, [*common, "--ca-file", certs["ca"]], name="relay-ca-file")
    # Its upstream never goes live, so no topic is ever published: declared, its clients may join them.
    untrusting = Relay(args.relay, common, name="relay-system-store")
    opened = []

    async def with_ca_file():
        _, line = await trusting.wait_line(Relay.live_re("upstream"), what="wss upstream live")
        log(f"    {line}")
        c = await relay_client(trusting.port, TOPICS, "client-of-ca-file-relay")
        opened.append(c)
        await c.count_each(20)
        for t in TOPICS:
            c.check_contiguous(t)
            await ref.seq_at_least(t, c.seqs(t)[-1])
            c.check_same_bytes(ref, t)
        check_no_stray_events(c)
        check_open(c)

    async def system_store():
        # Two failed attempts in a row (the second after a backoff) and never a live line.
        c = await relay_client(untrusting.port, TOPICS, "client-of-system-store-relay")
        opened.append(c)
        first, line = await untrusting.wait_line(Relay.down_re("upstream"), what="a failed attempt")
        log(f"    {line}")
        _, line2 = await untrusting.wait_line(Relay.down_re("upstream"), after=first + 1,
                                              what="a second failed attempt")
        for ln in (line, line2):
            low = ln.lower()
            check("tls" in low and "certificate" in low,
                  f"down line does not say the TLS certificate failed: {ln!r}")
        live = untrusting.find(Relay.live_re("upstream"))
        check(live is None, f"relay without the CA went live: {live}")
        untrusting.require_alive("after failing TLS verification")
        r = http_exchange(untrusting.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                          read_body=True)
        check(r.status == 200, f"GET /healthz on the relay without the CA: {r!r}")
        c.drain()
        check(all(not v for v in c.got.values()), f"{c.name}: got data though never live: {c.got}")
        check_open(c)

    async def insecure():
        r = Relay(args.relay, [*common, "--insecure"], name="relay-insecure")
        _, line = await r.wait_line(Relay.live_re("upstream"), what="live with --insecure")
        log(f"    {line}")
        r.kill()

    await checks.arun("--ca-file: live, clients get the simulator's bytes over wss", with_ca_file)
    await checks.arun("system store: never live, TLS certificate failure logged, /healthz 200",
                      system_store)
    await checks.arun("--insecure: live (the failure above is the verification)", insecure)
    await close_all(ref, *opened)


if __name__ == "__main__":
    run_relay_test("relay_tls", body)

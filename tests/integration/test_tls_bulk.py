#!/usr/bin/python3
"""Large messages over wss:// in both directions (python3-websockets 10.4).

  /usr/bin/python3 tests/integration/test_tls_bulk.py --server build/tests/integration/fanout-test-server

Checks: a ~500 KB subscribe message (one frame, then the same size in 40 fragments that straddle
TLS records) arrives intact: the server acknowledges every one of its 2,000 distinct topic names;
a client with a tiny receive buffer that stops reading gets a 2 MB message and bursts of 200 x 10 KB
messages published until the server's writes stall (stats.write_stalls grows), and once the
client reads again everything arrives byte-exact and in order, as it does on a fast client.
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (HOST, Checks, Server, WsClient, check, collect_topic_data,  # noqa: E402
                            fail, log, run_test, tcp_connect)
from test_tls import in_temp_dir, make_certs, trusting_context, wss_client, wss_open  # noqa: E402

TOPICS = 2000
NAME_BYTES = 240      # 2,000 names of 240 bytes: a ~500 KB message, ~30 TLS records
BIG_BYTES = 2_000_000
BURST = 200
BURST_BYTES = 10_000
MAX_BURST_ROUNDS = 6  # up to 14 MB in all, under the 64 MiB queue limit below


def topic_names(prefix: str) -> list:
    """Distinct names whose every byte depends on the index, so a lost or repeated record shows."""
    out = []
    for i in range(TOPICS):
        head = f"{prefix}{i:05d}-"
        body = "".join(chr(0x41 + (i * 7 + k * 13) % 26) for k in range(NAME_BYTES - len(head)))
        out.append(head + body)
    return out


def subscribe_json(names: list) -> str:
    return '{"op":"subscribe","args":[' + ",".join(f'"{n}"' for n in names) + "]}"


async def expect_acks(c: WsClient, names: list, timeout: float = 60):
    want = set(names)
    deadline = time.monotonic() + timeout
    while want:
        _, d = await c.next_event(max(0.1, deadline - time.monotonic()),
                                  f"subscribe acks ({len(want)} of {len(names)} missing)")
        check(d.get("event") == "subscribe" and d.get("arg") in want,
              f"{c.name}: expected a subscribe ack for one of the names sent, got {str(d)[:300]}")
        want.discard(d["arg"])


async def body(args):
    await in_temp_dir(run, args)


async def run(args, tmp: str):
    certs = make_certs(tmp)
    ctx = trusting_context(certs["ca"])
    srv = Server(args.server, ["--shards", "2", "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                               "--max-message-bytes", str(4 << 20), "--max-subscriptions", str(2 * TOPICS),
                               "--control-ops-burst", str(4 * TOPICS),  # one subscribe of 2,000 topics
                               "--max-queue-bytes", str(64 << 20)])
    port = srv.port
    checks = Checks()
    clients: list[WsClient] = []

    # -- client to server: one large frame, then a fragmented message, each over many records
    async def large_inbound():
        c = await wss_client(port, "/ws", ctx, "big-sender(wss)")
        clients.append(c)
        one = topic_names("one")
        text = subscribe_json(one)
        log(f"sending one {len(text)}-byte frame")
        await c.send(text)
        await expect_acks(c, one)
        frag = topic_names("frag")
        text = subscribe_json(frag)
        step = len(text) // 40 + 1
        pieces = [text[i:i + step] for i in range(0, len(text), step)]
        log(f"sending {len(text)} bytes in {len(pieces)} fragments")
        await c.send(pieces)
        await expect_acks(c, frag)
        st = await srv.astats()
        check(st.get("subscriptions") == 2 * TOPICS,
              f"expected {2 * TOPICS} subscriptions after both messages, stats: {st}")
        await c.close()
    await checks.arun(f"a {TOPICS}-topic subscribe of ~{TOPICS * NAME_BYTES // 1000} KB as one frame "
                      "and as 40 fragments: every topic acknowledged", large_inbound)

    # -- server to client: more than the socket buffers hold while the client does not read
    async def burst_to_slow_reader():
        import websockets
        raw = tcp_connect(port, rcvbuf=4096)
        try:
            # max_queue=1: websockets stops reading the socket once a message waits unread. No
            # permessage-deflate: the repetitive payloads would compress to almost nothing.
            ws = await websockets.connect(f"wss://{HOST}:{port}/ws?subscribe=burst", sock=raw, ssl=ctx,
                                          server_hostname=HOST, open_timeout=15, close_timeout=5,
                                          ping_interval=None, max_size=1 << 24, max_queue=1,
                                          compression=None)  # uncompressed: the bytes must fill the socket
        except Exception as e:
            raw.close()
            fail(f"slow reader: cannot open wss: {type(e).__name__}: {e}")
        fast = await wss_client(port, "/ws?subscribe=burst", ctx, "fast(wss)")
        clients.append(fast)
        await srv.arequire_subscribers(2, 15000)
        stalls_before = (await srv.astats()).get("write_stalls")
        check(isinstance(stalls_before, int), "stats has no write_stalls counter")
        last = await srv.apublish("burst", 1, BIG_BYTES)
        check(last == 1, f"publish burst 1 {BIG_BYTES} answered last seq {last}, expected 1")
        expected = {"burst": [(1, BIG_BYTES)]}
        fast_seen = 0
        # The kernel's send buffer autotunes up to tcp_wmem's maximum (4 MiB here) and the client
        # takes a whole message before it stops, so how much fits before a write stalls varies
        # with timing (TSan): publish bursts until the server reports a stall, bounded.
        for burst_round in range(MAX_BURST_ROUNDS):
            first = 2 + burst_round * BURST
            last = await srv.apublish("burst", BURST, BURST_BYTES)
            check(last == first + BURST - 1, f"publish burst answered last seq {last}, "
                                             f"expected {first + BURST - 1}")
            expected["burst"] += [(i, BURST_BYTES) for i in range(first, first + BURST)]
            await collect_topic_data(fast, {"burst": expected["burst"][fast_seen:]}, 60)
            fast_seen = len(expected["burst"])
            deadline = time.monotonic() + 3
            stalled = False
            while not stalled and time.monotonic() < deadline:
                st = await srv.astats()
                stalled = st.get("write_stalls", 0) > stalls_before
                if not stalled:
                    await asyncio.sleep(0.1)
            if stalled:
                break
        else:
            fail(f"the server's writes to the slow reader never stalled after {MAX_BURST_ROUNDS} "
                 f"bursts (the test did not reach a full socket): {st}")
        log(f"write stalls: {stalls_before} -> {st.get('write_stalls')}; the slow reader reads now")
        slow = WsClient(ws, "slow(wss, 4 KB rcvbuf)")
        clients.append(slow)
        await collect_topic_data(slow, expected, 60)
        await asyncio.sleep(0.3)
        extra = slow.pending_data() + fast.pending_data()
        check(not extra, f"unexpected extra data messages: {[m[:100] for _, m in extra[:3]]}")
        check(not slow.closed.is_set(), f"slow reader: {slow.describe_close()}")
    await checks.arun(f"a {BIG_BYTES // 1000} KB message and {BURST} x {BURST_BYTES // 1000} KB to a "
                      "wss client that stopped reading: byte-exact and in order once it reads",
                      burst_to_slow_reader)

    for c in clients:
        await c.close()
    rc = await srv.aquit(30)
    check(rc == 0, f"server exited with {rc} after quit, expected 0; " + srv.describe_death())
    checks.finish()


if __name__ == "__main__":
    run_test("tls_bulk", body)

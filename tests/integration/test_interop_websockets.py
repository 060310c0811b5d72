#!/usr/bin/python3
"""Interop with an independent client implementation (python3-websockets 10.4).

  /usr/bin/python3 tests/integration/test_interop_websockets.py --server build/tests/integration/fanout-test-server

Subscribe through JSON and through the URL, acks, byte-exact in-order delivery of every message
(small, medium and a 60000-byte one) of subscribed topics only, unsubscribe, the JSON ping, errors
for invalid JSON and unknown ops (connection kept open), WebSocket-level ping/pong, and a client
that offers permessage-deflate next to ones that do not.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (Checks, Server, WsClient, check, collect_topic_data, fail, log,  # noqa: E402
                            run_test)


async def expect_no_data(c: WsClient, wait: float = 0.5):
    await asyncio.sleep(wait)
    extra = c.pending_data()
    check(not extra, f"{c.name}: unexpected extra data messages: {[m[:100] for _, m in extra[:3]]}")


async def body(args):
    srv = Server(args.server, ["--shards", "2"])
    port = srv.port
    checks = Checks()

    # c1: JSON subscribe to a and b, offers permessage-deflate (websockets' default).
    c1 = await WsClient.open(port, "/ws", "c1(json a,b; deflate offered)")
    # c2: subscribes through the URL only.
    c2 = await WsClient.open(port, "/ws?subscribe=a", "c2(url a)", compression=None)
    # c3: JSON subscribe to b only, no compression.
    c3 = await WsClient.open(port, "/ws", "c3(json b)", compression=None)

    async def subscribe_acks():
        await c1.send_json({"op": "subscribe", "args": ["a", "b"]})
        acks = {}
        for _ in range(2):
            _, d = await c1.next_event(10, "subscribe acks for a and b")
            check(d.get("event") == "subscribe", f"c1: expected a subscribe ack, got {d}")
            check(d.get("arg") in ("a", "b") and d["arg"] not in acks,
                  f"c1: ack for an unexpected or repeated topic: {d}")
            acks[d["arg"]] = d
        log(f"c1 acks: {acks}")
        await c3.subscribe("b")
    await checks.arun("JSON subscribe is acknowledged per topic", subscribe_acks)

    async def all_registered():
        n = await srv.await_subscribers(4, 15000)
        check(n >= 4, f"wait-subscribers 4 answered {n}: expected c1 a,b + c2 a (URL) + c3 b")
        st = await srv.astats()
        check(st.get("subscriptions") == 4, f"stats.subscriptions should be 4, stats: {st}")
        check(st.get("sessions") == 3, f"stats.sessions should be 3, stats: {st}")
    await checks.arun("subscriptions registered (JSON and URL)", all_registered)

    async def deliver_all():
        la = await srv.apublish("a", 200, 300)
        lb = await srv.apublish("b", 50, 1000)
        lc = await srv.apublish("c", 3, 100)  # nobody subscribes to c
        la2 = await srv.apublish("a", 1, 60000)
        check((la, lb, lc, la2) == (200, 50, 3, 201),
              f"publish answers: last seqs {(la, lb, lc, la2)}, expected (200, 50, 3, 201)")
        exp_a = [(i, 300) for i in range(1, 201)] + [(201, 60000)]
        exp_b = [(i, 1000) for i in range(1, 51)]
        await asyncio.gather(
            collect_topic_data(c1, {"a": exp_a, "b": exp_b}, 30),
            collect_topic_data(c2, {"a": exp_a}, 30),
            collect_topic_data(c3, {"b": exp_b}, 30))
        for c in (c1, c2, c3):
            await expect_no_data(c, 0.3)
    await checks.arun("every message of subscribed topics only, byte-exact, in order", deliver_all)

    async def unsubscribe():
        await c1.send_json({"op": "unsubscribe", "args": ["a"]})
        ack_idx, d = await c1.expect_event("unsubscribe", 10)
        check(d.get("arg") in (None, "a") or d.get("args") == ["a"],
              f"c1: unsubscribe ack names the wrong topic: {d}")
        st = await srv.astats()
        check(st.get("subscriptions") == 3, f"after unsubscribe stats.subscriptions should be 3: {st}")
        await srv.apublish("a", 5, 100)
        await srv.apublish("b", 5, 100)
        exp_a = [(i, 100) for i in range(202, 207)]
        exp_b = [(i, 100) for i in range(51, 56)]
        await asyncio.gather(
            collect_topic_data(c1, {"b": exp_b}, 20),  # fails on any message of topic a
            collect_topic_data(c2, {"a": exp_a}, 20),
            collect_topic_data(c3, {"b": exp_b}, 20))
        for c in (c1, c2, c3):
            await expect_no_data(c, 0.3)
    await checks.arun("unsubscribe is acknowledged and stops delivery", unsubscribe)

    async def json_ping():
        await c3.send_json({"op": "ping"})
        await c3.expect_event("pong", 10)
    await checks.arun('{"op":"ping"} -> {"event":"pong"}', json_ping)

    async def bad_json():
        await c3.send('{"op": "subscribe", "args": [')
        _, d = await c3.expect_event("error", 10)
        check("code" in d and "msg" in d, f"c3: error event lacks code/msg: {d}")
        await c3.send_json({"op": "ping"})
        await c3.expect_event("pong", 10)
        check(not c3.closed.is_set(), f"c3: {c3.describe_close()}")
    await checks.arun("invalid JSON -> error event, connection stays open", bad_json)

    async def unknown_op():
        await c3.send_json({"op": "frobnicate", "args": ["b"]})
        _, d = await c3.expect_event("error", 10)
        check("code" in d and "msg" in d, f"c3: error event lacks code/msg: {d}")
        await c3.send_json({"op": "ping"})
        await c3.expect_event("pong", 10)
        # still subscribed to b and receiving
        await srv.apublish("b", 1, 200)
        await collect_topic_data(c3, {"b": [(56, 200)]}, 10)
        await collect_topic_data(c1, {"b": [(56, 200)]}, 10)
    await checks.arun("unknown op -> error event, connection stays open", unknown_op)

    async def ws_ping():
        for c in (c1, c2, c3):
            try:
                waiter = await c.ws.ping(b"interop-ping")
                await asyncio.wait_for(waiter, 10)
            except asyncio.TimeoutError:
                fail(f"{c.name}: no pong to a WebSocket ping within 10 s")
            except Exception as e:
                fail(f"{c.name}: ping failed: {type(e).__name__}: {e}; {c.describe_close()}")
    await checks.arun("WebSocket ping answered with pong", ws_ping)

    async def no_stray_events():
        for c in (c1, c2, c3):
            check(not c.closed.is_set(), f"{c.name}: {c.describe_close()}")
            ev = c.pending_events()
            # c2 may have been acknowledged for its URL subscription; nothing else is expected.
            bad = [m for _, m in ev if not (c is c2 and '"subscribe"' in m)]
            check(not bad, f"{c.name}: unexpected events: {bad[:3]}")
    await checks.arun("no stray events, all connections still open", no_stray_events)

    async def clean_close():
        for c in (c1, c2, c3):
            await c.close()
            check(c.ws.close_code == 1000, f"{c.name}: closing handshake ended with code "
                                           f"{c.ws.close_code}, expected the echoed 1000")
    await checks.arun("client-initiated close handshake completes with 1000", clean_close)

    check(srv.alive(), "server died: " + srv.describe_death())
    checks.finish()


if __name__ == "__main__":
    run_test("interop_websockets", body)

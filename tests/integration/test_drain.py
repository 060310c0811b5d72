#!/usr/bin/python3
"""Graceful drain on `quit`.

  /usr/bin/python3 tests/integration/test_drain.py --server build/tests/integration/fanout-test-server

Clients are connected (websockets clients subscribed to topic d, one subscribed to nothing, and a
raw-socket client with a 4 KiB receive buffer subscribed to d and e, so the server still holds
queued data for it when it is told to quit). The test writes `publish d 300 2000`,
`publish e 1 50000` and `quit` to stdin in one go. Asserted: the answers `published d 300`,
`published e 1`, `bye`; every client receives every message published before `quit`, byte-exact
and in order, and then a close frame with code 1012 (service restart) whose reason is
{"reason":"draining","retry_after_ms":N} (issue 15: reconnect advice); the server exits with status 0.
"""

import asyncio
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (OP_CLOSE, OP_TEXT, Checks, ConnectionEnded, RawWS, Server,  # noqa: E402
                            WsClient, check, check_payload, close_payload, collect_topic_data,
                            check_retry_advice, fail, is_event, log, parse_close, parse_payload, run_test,
                            short)

N_WS = 8
# Server::Options' defaults: drain_retry_after 5 s, retry_jitter 0.5.
DRAIN_ADVICE_MS = (2500, 5000)


def check_drain_advice(who: str, reason):
    check_retry_advice(who, reason, "draining", *DRAIN_ADVICE_MS)

D_COUNT, D_BYTES = 300, 2000
E_BYTES = 50000


def raw_reader(raw: RawWS, result: dict, started: threading.Event):
    """Reads everything until the close frame; records data per topic and the close code."""
    started.wait(30)
    got = {"d": [], "e": []}
    result["got"] = got
    try:
        while True:
            op, payload = raw.recv_message(30)
            if op == OP_CLOSE:
                result["close"] = parse_close(payload)
                raw.send_frame(OP_CLOSE, close_payload(1001))
                result["after_close"] = raw.wait_eof(10)
                return
            if op != OP_TEXT:
                result["error"] = f"unexpected opcode {op}"
                return
            text = payload.decode()
            if is_event(text):
                continue
            d = parse_payload(text, "raw client")
            t = d.get("topic")
            if t not in got:
                result["error"] = f"message of topic {t!r}: {short(text)}"
                return
            size = D_BYTES if t == "d" else E_BYTES
            check_payload(text, t, len(got[t]) + 1, size, "raw client")
            got[t].append(d["seq"])
    except ConnectionEnded as e:
        result["ended"] = e.how
    except socket.timeout:
        result["ended"] = "timeout (30 s without a frame)"
    except Exception as e:  # noqa: BLE001
        result["error"] = f"{type(e).__name__}: {e}"


async def body(args):
    srv = Server(args.server, ["--shards", 2, "--max-queue-bytes", 8 << 20,
                               "--ping-interval-ms", 600000, "--idle-timeout-ms", 600000])
    checks = Checks()

    subs = []
    for i in range(N_WS):
        c = await WsClient.open(srv.port, "/ws", f"ws{i}", compression=None if i % 2 else "deflate")
        subs.append(c)
    await asyncio.gather(*(c.subscribe("d") for c in subs))
    idle = await WsClient.open(srv.port, "/ws", "idle (no subscription)", compression=None)

    def open_raw():
        r = RawWS(srv.port, rcvbuf=4096)
        r.send_text('{"op":"subscribe","args":["d","e"]}')
        acks = 0
        while acks < 2:
            t = r.recv_text(10)
            check(is_event(t) and '"subscribe"' in t, f"raw client: expected subscribe acks, got {short(t)}")
            acks += 1
        return r
    raw = await asyncio.to_thread(open_raw)
    await srv.arequire_subscribers(N_WS + 2, 15000)
    st = await srv.astats()
    check(st.get("sessions") == N_WS + 2, f"stats.sessions should be {N_WS + 2}: {st}")

    raw_result: dict = {}
    started = threading.Event()
    raw_thread = threading.Thread(target=raw_reader, args=(raw, raw_result, started), daemon=True)
    raw_thread.start()

    # publish and quit in one write: the quit reaches the server while data is still queued
    srv.send(f"publish d {D_COUNT} {D_BYTES}\npublish e 1 {E_BYTES}\nquit")
    started.set()

    async def answers():
        la = await asyncio.to_thread(srv.expect, "published d ", 30)
        lb = await asyncio.to_thread(srv.expect, "published e ", 30)
        await asyncio.to_thread(srv.expect, "bye", 30)
        check(la == f"published d {D_COUNT}" and lb == "published e 1",
              f"unexpected answers {la!r}, {lb!r}")
    await checks.arun("stdin answers: published, published, bye", answers)

    async def ws_clients():
        exp = {"d": [(i, D_BYTES) for i in range(1, D_COUNT + 1)]}
        await asyncio.gather(*(collect_topic_data(c, exp, 30) for c in subs))
        for c in subs + [idle]:
            try:
                await asyncio.wait_for(c.closed.wait(), 30)
            except asyncio.TimeoutError:
                fail(f"{c.name}: not closed within 30 s after quit")
            extra = c.pending_data()
            check(not extra, f"{c.name}: data after the last message: {[short(m, 60) for _, m in extra[:2]]}")
            check(c.close_code == 1012,
                  f"{c.name}: expected close code 1012 (service restart), got {c.describe_close()}")
            check_drain_advice(c.name, c.close_reason)
    await checks.arun("websockets clients: all data, then close 1012 with retry_after_ms", ws_clients)

    async def raw_client():
        await asyncio.to_thread(raw_thread.join, 60)
        check(not raw_thread.is_alive(), "raw client reader still running after 60 s")
        got = raw_result.get("got", {})
        summary = (f"d: {len(got.get('d', []))}/{D_COUNT}, e: {len(got.get('e', []))}/1, "
                   f"close={raw_result.get('close')}, ended={raw_result.get('ended')}, "
                   f"error={raw_result.get('error')}")
        log(f"    raw client: {summary}")
        check("error" not in raw_result, f"raw client: {summary}")
        check(len(got.get("d", [])) == D_COUNT and len(got.get("e", [])) == 1,
              f"raw client (4 KiB receive buffer, data still queued at quit) lost data: {summary}")
        check(raw_result.get("close") is not None and raw_result["close"][0] == 1012,
              f"raw client: expected a close frame with code 1012 after the data: {summary}")
        check_drain_advice("raw client", raw_result["close"][1])
        check(raw_result.get("after_close") in ("eof", "reset"),
              f"raw client: TCP not closed after the closing handshake ({raw_result.get('after_close')})")
    await checks.arun("raw client with queued data: all data, then close 1012", raw_client)

    async def exit_status():
        try:
            rc = await asyncio.to_thread(srv.proc.wait, 30)
        except Exception:
            fail("server did not exit within 30 s after quit: " + srv.describe_death())
        check(rc == 0, f"server exit status {rc}, expected 0: " + srv.describe_death())
    await checks.arun("server exits with status 0", exit_status)

    raw.close_socket()
    checks.finish()


if __name__ == "__main__":
    run_test("drain", body)

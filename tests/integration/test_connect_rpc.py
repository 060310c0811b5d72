#!/usr/bin/python3
"""The application's callbacks (Server::Callbacks on_connect, on_message, on_rpc) over real sockets.

  /usr/bin/python3 tests/integration/test_connect_rpc.py --server build/tests/integration/fanout-test-server

fanout-test-server runs its demos (test_server.cpp): --demo-connect (401 unless ?uid=, ?deny=N,
?slow=1 decides from another thread after 300 ms, ?never=1 never decides, ?topics=a,b joins),
--demo-rpc (echo; methods whoami, slow, late, never, fail, bad) and --demo-echo (on_message sends the
message back). A second server without demos shows what clients get when the callbacks are unset.
"""

import asyncio
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (OP_BINARY, OP_CLOSE, OP_TEXT, Checks, RawWS, Server, build_frame,  # noqa: E402
                            check, fail, handshake_request, http_exchange, make_key, parse_close,
                            recv_until_closed, run_test, tcp_connect, ws_open)

RPC_TIMEOUT_MS = 700
MAX_PENDING = 4
MAX_MESSAGE = 4096
MESSAGES_BURST = 20


async def recv_json(ws, timeout: float = 10, what: str = "a message"):
    try:
        m = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        fail(f"no {what} within {timeout} s")
    return m, json.loads(m)


async def rpc(ws, rid, method=None, data=None, timeout: float = 10):
    req = {"op": "rpc", "id": rid}
    if method is not None:
        req["method"] = method
    if data is not None:
        req["data"] = data
    await ws.send(json.dumps(req))
    return await recv_json(ws, timeout, f"the answer to rpc {rid!r}")


async def refused_status(port: int, path: str) -> int:
    import websockets
    try:
        ws = await ws_open(port, path)
    except websockets.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    fail(f"{path}: the upgrade was accepted")


async def expect_close(ws, code: int, timeout: float = 10) -> str:
    import websockets
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
    except websockets.ConnectionClosed:
        pass
    except asyncio.TimeoutError:
        fail(f"not closed within {timeout} s")
    check(ws.close_code == code, f"expected close {code}, got {ws.close_code} {ws.close_reason!r}")
    return ws.close_reason


async def body(args):
    srv = Server(args.server, ["--demo-connect", "--demo-rpc", "--demo-echo", "--subscribe-timeout-ms", "0",
                               "--handshake-timeout-ms", "1500", "--rpc-timeout-ms", str(RPC_TIMEOUT_MS),
                               "--max-pending-rpcs", str(MAX_PENDING), "--max-message-bytes", str(MAX_MESSAGE),
                               "--messages-burst", str(MESSAGES_BURST), "--messages-per-second", "5"])
    bare = Server(args.server, ["--subscribe-timeout-ms", "0"], name="bare")
    port = srv.port
    checks = Checks()

    # ---------------------------------------------------------------- on_connect
    async def refusals():
        check(await refused_status(port, "/ws") == 401, "no uid: expected 401")
        check(await refused_status(port, "/ws?deny=403") == 403, "deny=403: expected 403")
        check(await refused_status(port, "/ws?deny=451&uid=x") == 451, "deny=451: expected 451")
        # The reason is the body; a status that is not an error becomes 403.
        r = http_exchange(port, handshake_request("/ws?deny=429", key=make_key()), read_body=True)
        check(r.status == 429 and r.body == b"denied by the demo\n", f"deny=429: {r!r}")
        r = http_exchange(port, handshake_request("/ws?deny=200", key=make_key()), read_body=True)
        check(r.status == 403, f"deny=200 must be answered 403: {r!r}")
    await checks.arun("on_connect refuses: the client sees the status and the reason", refusals)

    async def accepted_with_uid():
        ws = await ws_open(port, "/ws?uid=alice")
        _, d = await rpc(ws, 1, "whoami")
        check(d == {"event": "rpc", "id": 1, "data": {"user": "alice", "session": d["data"]["session"]}},
              f"whoami: {d}")
        await ws.close()
    await checks.arun("on_connect accepts with a user id: Session::user_id() is it", accepted_with_uid)

    async def slow_decision():
        # Decided 300 ms later on another thread; the client's first frame came with its head and waits.
        s = tcp_connect(port)
        key = make_key()
        frame = build_frame(OP_TEXT, b'{"op":"rpc","id":"early","method":"whoami"}')
        s.sendall(handshake_request("/ws?uid=bob&slow=1", key=key) + frame)
        data, ended = recv_until_closed(s, 10, b'"early"')
        s.close()
        check(data.startswith(b"HTTP/1.1 101"), f"expected 101 first: {data[:200]!r} ({ended})")
        check(b'"data":{"user":"bob"' in data, f"the pipelined rpc's answer is missing: {data!r}")
    await checks.arun("on_connect decides later from another thread; pipelined frames wait", slow_decision)

    async def never_decided():
        start = time.monotonic()
        check(await refused_status(port, "/ws?uid=x&never=1") == 504, "never decided: expected 504")
        check(time.monotonic() - start < 10, "504 took too long")
    await checks.arun("on_connect never decides: 504 at handshake_timeout", never_decided)

    async def too_much_before_101():
        s = tcp_connect(port)
        s.sendall(handshake_request("/ws?uid=x&slow=1", key=make_key()) + build_frame(OP_TEXT, b"x" * 9000))
        data, ended = recv_until_closed(s, 10)
        s.close()
        check(data.startswith(b"HTTP/1.1 400"), f"expected 400 for 9000 bytes before the 101: {data[:200]!r}")
    await checks.arun("bytes before the decision are bounded by the head limit (400)", too_much_before_101)

    async def topics_joined():
        ws = await ws_open(port, "/ws?uid=carol&topics=news,sport")
        srv.require_subscribers(2)
        srv.publish("news", 1, 100)
        m = await asyncio.wait_for(ws.recv(), 10)
        check(json.loads(m)["topic"] == "news", f"expected the news message, got {m[:200]}")
        await ws.close()
    await checks.arun("on_connect's topics are joined at once", topics_joined)

    async def topics_meet_subscribe_timeout():
        strict = Server(args.server, ["--demo-connect", "--subscribe-timeout-ms", "500"], name="strict")
        joined = await ws_open(strict.port, "/ws?uid=m&topics=news")
        idle = await ws_open(strict.port, "/ws?uid=n")  # opened later: its deadline passes later
        reason = await expect_close(idle, 1008)
        check(reason == "no subscription", f"close reason {reason!r}")
        await joined.send('{"op":"ping"}')
        _, d = await recv_json(joined)
        check(d == {"event": "pong"}, f"the connection with on_connect's topics: {d}")
        await joined.close()
        strict.quit()
    await checks.arun("on_connect's topics count as subscriptions for subscribe_timeout",
                      topics_meet_subscribe_timeout)

    # ---------------------------------------------------------------- on_message
    async def echo():
        ws = await ws_open(port, "/ws?uid=dave")
        for m in ["hello", '{"op":"chat","text":"hi"}', '{"type":"x"}', "[1,2]", '{"op":5}']:
            await ws.send(m)
            got = await asyncio.wait_for(ws.recv(), 10)
            check(got == m, f"echo of {m!r}: got {got!r}")
        await ws.send(b"\x00\x01binary\xff")
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == b"\x00\x01binary\xff", f"binary echo: {got!r}")
        # Control ops stay the protocol's, also when malformed.
        await ws.send('{"op":"ping"}')
        _, d = await recv_json(ws)
        check(d == {"event": "pong"}, f"ping: {d}")
        await ws.send('{"op":"subscribe"}')
        _, d = await recv_json(ws)
        check(d.get("event") == "error" and d.get("code") == 4002, f"subscribe without args: {d}")
        await ws.close()
    await checks.arun("on_message gets what is not a control op (text and binary)", echo)

    async def unset_callbacks():
        ws = await ws_open(bare.port, "/ws")
        await ws.send('{"op":"chat"}')
        _, d = await recv_json(ws)
        check(d.get("code") == 4001, f"unknown op without on_message: {d}")
        await ws.send(b"\x01")
        _, d = await recv_json(ws)
        check(d.get("code") == 4007, f"binary without on_message: {d}")
        _, d = await rpc(ws, 9, data={"a": 1})
        check(d == {"event": "error", "op": "rpc", "id": 9, "code": 4501, "msg": "rpc not served"},
              f"rpc without on_rpc: {d}")
        await ws.close()
    await checks.arun("unset on_message and on_rpc: errors 4001/4007 and 4501", unset_callbacks)

    # ---------------------------------------------------------------- on_rpc
    async def byte_for_byte():
        ws = await ws_open(port, "/ws?uid=erin")
        raw = '{ "a" : [1, 2.50, -0.0, 1e3], "s": "\\u00e9\\n", "n": null }'
        await ws.send('{"op":"rpc","id":"q-1","data":' + raw + ',"method":"echo"}')
        m, _ = await recv_json(ws)
        check(m == '{"event":"rpc","id":"q-1","data":' + raw + '}', f"not byte for byte: {m!r}")
        await ws.send('{"op":"rpc","id":12345678901234}')
        m, _ = await recv_json(ws)
        check(m == '{"event":"rpc","id":12345678901234,"data":null}', f"no data: {m!r}")
        _, d = await rpc(ws, 3, "fail")
        check(d == {"event": "error", "op": "rpc", "id": 3, "code": 4000, "msg": "failed as asked"}, f"fail: {d}")
        _, d = await rpc(ws, 4, "bad")
        check(d.get("code") == 4500 and d.get("id") == 4, f"an answer that is not JSON: {d}")
        _, d = await rpc(ws, 5, "slow", "s")
        check(d == {"event": "rpc", "id": 5, "data": "s"}, f"slow: {d}")
        await ws.close()
    await checks.arun("rpc answers come back byte for byte, errors carry the id", byte_for_byte)

    async def many_clients():
        async def client(n):
            ws = await ws_open(port, f"/ws?uid=u{n}")
            for i in range(MAX_PENDING):
                await ws.send(json.dumps({"op": "rpc", "id": f"{n}-{i}", "method": "slow" if i % 2 else "echo",
                                          "data": {"client": n, "i": i}}))
            got = {}
            for _ in range(MAX_PENDING):
                _, d = await recv_json(ws, 10, f"client {n}'s answers")
                check(d.get("event") == "rpc", f"client {n}: {d}")
                got[d["id"]] = d["data"]
            await ws.close()
            want = {f"{n}-{i}": {"client": n, "i": i} for i in range(MAX_PENDING)}
            check(got == want, f"client {n} got {got}")
        await asyncio.gather(*(client(n) for n in range(25)))
    await checks.arun("concurrent rpcs from 25 clients each get their own answers", many_clients)

    async def timeout_and_late():
        ws = await ws_open(port, "/ws?uid=frank")
        start = time.monotonic()
        _, d = await rpc(ws, "t", "late")
        check(d == {"event": "error", "op": "rpc", "id": "t", "code": 4504,
                    "msg": f"no answer within {RPC_TIMEOUT_MS} ms"}, f"timeout: {d}")
        check(time.monotonic() - start >= RPC_TIMEOUT_MS / 1000 * 0.9, "4504 came before rpc_timeout")
        srv.expect('late-answered "t"', timeout=10)
        await ws.send('{"op":"ping"}')
        _, d = await recv_json(ws)
        check(d == {"event": "pong"}, f"the late answer must be dropped, got {d}")
        await ws.close()
    await checks.arun("rpc_timeout: 4504, and the late answer is dropped", timeout_and_late)

    async def pending_limit():
        ws = await ws_open(port, "/ws?uid=gina")
        for i in range(MAX_PENDING + 1):
            await ws.send(json.dumps({"op": "rpc", "id": i, "method": "never"}))
        _, d = await recv_json(ws)
        check(d.get("code") == 4429 and d.get("id") == MAX_PENDING, f"past max_pending_rpcs: {d}")
        timed_out = set()
        for _ in range(MAX_PENDING):
            _, d = await recv_json(ws, 10)
            check(d.get("code") == 4504, f"expected the waiting rpcs to time out: {d}")
            timed_out.add(d["id"])
        check(timed_out == set(range(MAX_PENDING)), f"timed out: {timed_out}")
        _, d = await rpc(ws, "after", data=1)  # room again
        check(d == {"event": "rpc", "id": "after", "data": 1}, f"after the timeouts: {d}")
        await ws.close()
    await checks.arun("max_pending_rpcs: 4429 past it, room again after the timeouts", pending_limit)

    # ---------------------------------------------------------------- hostile input
    async def bad_ids():
        ws = await ws_open(port, "/ws?uid=h")
        for rid in ['{}', '[1]', 'true', 'null', '"' + "x" * 300 + '"']:
            await ws.send('{"op":"rpc","id":' + rid + ',"data":1}')
            _, d = await recv_json(ws)
            check(d.get("event") == "error" and d.get("op") == "rpc" and d.get("code") == 4002 and "id" not in d,
                  f"id {rid[:20]}: {d}")
        await ws.send('{"op":"rpc","data":1}')
        _, d = await recv_json(ws)
        check(d.get("code") == 4002, f"no id: {d}")
        await ws.close()
    await checks.arun("rpc with a bad id: 4002, the connection stays", bad_ids)

    async def huge_data():
        ws = await ws_open(port, "/ws?uid=i")
        await ws.send('{"op":"rpc","id":1,"data":"' + "y" * (MAX_MESSAGE + 100) + '"}')
        await expect_close(ws, 1009)
    await checks.arun("rpc data past max_message_bytes: 1009", huge_data)

    async def flood():
        ws = await ws_open(port, "/ws?uid=j")
        import websockets
        sent = 0
        try:
            for _ in range(MESSAGES_BURST * 10):
                await ws.send(b"flood")
                sent += 1
        except websockets.ConnectionClosed:
            pass
        reason = await expect_close(ws, 1008)
        check(reason == "too many messages", f"close reason {reason!r}")
        check(sent > MESSAGES_BURST, f"closed after {sent} messages only")
    await checks.arun("a message flood past messages_burst: 1008", flood)

    async def still_serving():
        ws = await ws_open(port, "/ws?uid=k")
        _, d = await rpc(ws, 1, "whoami")
        check(d["data"]["user"] == "k", f"{d}")
        await ws.close()
    await checks.arun("the server still serves after all that", still_serving)

    checks.finish()
    check(srv.alive() and bare.alive(), "a server died")
    srv.quit()
    bare.quit()


if __name__ == "__main__":
    run_test("connect_rpc", body)

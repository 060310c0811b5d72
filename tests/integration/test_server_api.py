#!/usr/bin/python3
"""The server API (docs/server-api.md) on the relay's admin listener, with real WebSocket clients.

  /usr/bin/python3 tests/integration/test_server_api.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

One relay (two shards, so API calls and clients are often on different threads) with [api] keys,
small body and batch limits and a short handshake timeout. Its clients learn their client ids
through the API itself (each joins a topic of its own; GET /api/presence?clients=1 names it).
Checks, each against what the clients receive byte for byte: every endpoint (publish with and
without exclude, broadcast, send_to_user, send_to_client, join, leave, bind, unbind, disconnect,
batch, presence, online, info); the key (none, wrong, Bearer, X-API-Key: 401/200); malformed JSON
and missing fields (400 naming the field); an unknown user (200, delivered 0); 404 and 405; body
limits (413 past max_body_bytes, a huge Content-Length answered before any body is sent, 411 for
chunked, 400 for a body on GET, a short body then silence closed at the handshake timeout,
pipelined POSTs answered in order, 100-continue); the public listener still refuses any body;
SIGHUP rereads the key file (a bad one keeps the keys in use); a relay without a key file serves no
API (404).
"""

import asyncio
import http.client
import json
import os
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import HttpResponse, WsClient, recv_until_closed, tcp_connect  # noqa: E402
from relay_testlib import HOST, Checks, Relay, check, fail, log, run_relay_test, write_file  # noqa: E402

KEY = "api-key-for-the-test-0123456789"
OTHER_KEY = "second-key-for-rotation-abcdef"
MAX_BODY = 4096
MAX_BATCH = 5
HANDSHAKE_MS = 1500
TOPICS = ["room:a", "room:b"] + [f"me:{n}" for n in "ABCDE"]


class Api:
    """One keep-alive HTTP connection to the admin listener."""

    def __init__(self, port: int, key: str | None = KEY, header: str = "bearer"):
        self.port = port
        self.key = key
        self.header = header
        self.conn = http.client.HTTPConnection(HOST, port, timeout=10)
        self.last_used = time.monotonic()

    def request(self, method: str, path: str, body=None, key: str | None = "default",
                headers=None) -> tuple[int, dict, dict]:
        key = self.key if key == "default" else key
        h = dict(headers or {})
        if key is not None:
            if self.header == "bearer":
                h["Authorization"] = f"Bearer {key}"
            else:
                h["X-API-Key"] = key
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body, separators=(",", ":"))
            if isinstance(data, str):
                data = data.encode()
            h["Content-Type"] = "application/json"
        if time.monotonic() - self.last_used > HANDSHAKE_MS / 2000:
            # The server closes a keep-alive connection idle for its handshake timeout: start afresh.
            self.conn.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        raw = r.read()
        self.last_used = time.monotonic()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"_raw": raw.decode("latin-1")}
        if r.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        return r.status, hdrs, parsed

    def post(self, endpoint: str, body, **kw):
        return self.request("POST", f"/api/{endpoint}", body, **kw)

    def get(self, path: str, **kw):
        return self.request("GET", f"/api/{path}", **kw)

    def ok(self, endpoint: str, body) -> dict:
        status, _, r = self.post(endpoint, body)
        check(status == 200, f"POST /api/{endpoint} {body}: {status} {r}")
        return r

    def close(self):
        self.conn.close()


async def client_id(api: Api, private_topic: str, timeout: float = 10) -> str:
    """The client id of the one connection in `private_topic` (its own topic)."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, r = await asyncio.to_thread(api.get, f"presence?topic={private_topic}&clients=1")
        check(status == 200, f"presence of {private_topic}: {status} {r}")
        if r.get("clients"):
            check(len(r["clients"]) == 1, f"{private_topic}: one client expected, got {r}")
            return r["clients"][0]
        if time.monotonic() > deadline:
            fail(f"{private_topic}: no client in presence within {timeout} s: {r}")
        await asyncio.sleep(0.02)


async def expect_data(c: WsClient, want: str, what: str):
    """The client's next data message is exactly `want`."""
    _, m = await c.next_data(10)
    check(m == want, f"{c.name}: {what}: expected {want!r}, got {m!r}")


async def marker(api: Api, clients, text: str):
    """Sends `text` to each client alone and checks it is their next message: whatever a test expected
    them NOT to receive would have arrived before it."""
    for c, cid in clients:
        r = await asyncio.to_thread(api.ok, "send_to_client", {"client": cid, "data": text})
        check(r == {"delivered": 1}, f"marker to {c.name}: {r}")
        await expect_data(c, text, "the marker (nothing else before it)")


def raw_http(port: int, request: bytes, timeout: float = 10, until: bytes | None = None) -> HttpResponse:
    s = tcp_connect(port, timeout=timeout)
    try:
        s.sendall(request)
        data, ended = recv_until_closed(s, timeout, until)
        return HttpResponse(data, ended)
    finally:
        s.close()


def post_head(path: str, length: int, extra: str = "", key: str = KEY) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def statuses(raw: bytes) -> list[int]:
    out = []
    for part in raw.split(b"HTTP/1.1 ")[1:]:
        out.append(int(part[:3]))
    return out


async def body(args):
    d = tempfile.mkdtemp(prefix="fanout-api-")
    keys = write_file(d, "api.keys", f"# two keys: rotation\n{KEY}\n\n{OTHER_KEY}\n")
    conf = write_file(d, "relay.toml", f"""
[server]
shards = 2
handshake_timeout_ms = {HANDSHAKE_MS}
[topics]
declare = [{", ".join(f'"{t}"' for t in TOPICS)}]
[api]
key_file = "{keys}"
max_body_bytes = {MAX_BODY}
max_batch = {MAX_BATCH}
[gateway]
node = "t1"
""")
    relay = Relay(args.relay, ["--config", conf, "--stats-interval", "0", "--listen", f"{HOST}:0"])
    check(relay.admin_port is not None, "the relay names no admin port")
    port = relay.admin_port
    api = Api(port)
    checks = Checks()

    # Five clients, each in a topic of its own (to learn its id); A and B in room:a.
    clients = {}
    for n in "ABCDE":
        c = await WsClient.open(relay.port, f"/ws?subscribe=me:{n}", name=n)
        await c.expect_event("subscribe", arg=f"me:{n}")
        clients[n] = c
    await clients["A"].subscribe("room:a")
    await clients["B"].subscribe("room:a")
    ids = {n: await client_id(api, f"me:{n}") for n in "ABCDE"}
    log(f"client ids: {ids}")
    A, B, C, D, E = (clients[n] for n in "ABCDE")
    everyone = [(clients[n], ids[n]) for n in "ABCDE"]

    def the_key():
        for key, header in ((None, "bearer"), ("wrong-key-0123456789abcdef", "bearer"),
                            (KEY[:-1], "bearer"), (KEY + "x", "bearer")):
            a = Api(port, key, header)
            status, h, r = a.post("publish", {"topic": "room:b", "data": "x"})
            check(status == 401, f"key {key!r}: expected 401, got {status} {r}")
            check("bearer" in h.get("www-authenticate", "").lower(), f"401 without WWW-Authenticate: {h}")
            check("API key" in r.get("error", ""), f"401 body: {r}")
            status, _, r = a.get("info")
            check(status == 401, f"GET /api/info with key {key!r}: {status}")
            status, _, r = a.get("nothing-here")
            check(status == 401, f"an unknown endpoint without the key: {status} (not probed)")
            a.close()
        for key, header in ((KEY, "bearer"), (OTHER_KEY, "bearer"), (KEY, "x-api-key"), (OTHER_KEY, "x-api-key")):
            a = Api(port, key, header)
            status, h, r = a.post("publish", {"topic": "room:b", "data": "x"})
            check(status == 200 and r == {"delivered": 0}, f"{header} {key!r}: {status} {r}")
            check(h.get("content-type") == "application/json", f"content type {h}")
            a.close()
    checks.run("API key: none or wrong 401, Bearer and X-API-Key with either key 200", the_key)

    def routing():
        status, _, r = api.get("nothing-here")
        check(status == 404 and "no endpoint" in r.get("error", ""), f"unknown endpoint: {status} {r}")
        status, h, r = api.request("GET", "/api/publish")
        check(status == 405 and h.get("allow") == "POST", f"GET /api/publish: {status} {h}")
        status, h, r = api.request("POST", "/api/info", {})
        check(status == 405 and "GET" in h.get("allow", ""), f"POST /api/info: {status} {h}")
    checks.run("404 for an unknown endpoint, 405 with Allow for a wrong method", routing)

    async def publish():
        r = await asyncio.to_thread(api.ok, "publish", {"topic": "room:a", "data": {"px": 1.10, "q": [1e2, "é"]}})
        check(r == {"delivered": 2}, f"publish to room:a: {r}")
        # json.dumps wrote the body: the clients get that text for data, byte for byte.
        want = json.dumps({"px": 1.10, "q": [1e2, "é"]}, separators=(",", ":"))
        await expect_data(A, want, "publish (object)")
        await expect_data(B, want, "publish (object)")
        raw = b'{"topic":"room:a","data":  {"n": 1.50,  "s":"\\u00e9"} }'
        status, _, r = await asyncio.to_thread(api.post, "publish", raw)
        check(status == 200 and r == {"delivered": 2}, f"{status} {r}")
        await expect_data(A, '{"n": 1.50,  "s":"\\u00e9"}', "publish (object as written)")
        await expect_data(B, '{"n": 1.50,  "s":"\\u00e9"}', "publish (object as written)")
        r = await asyncio.to_thread(api.ok, "publish", {"topic": "room:a", "data": 'plain "text"\n'})
        await expect_data(A, 'plain "text"\n', "publish (a string, sent as its content)")
        await expect_data(B, 'plain "text"\n', "publish (a string, sent as its content)")
        r = await asyncio.to_thread(api.ok, "publish", {"topic": "room:a", "data": "not for A", "exclude": [ids["A"]]})
        check(r == {"delivered": 1}, f"publish with exclude: {r}")
        await expect_data(B, "not for A", "publish with exclude")
        await marker(api, [(A, ids["A"])], "after-exclude")
        r = await asyncio.to_thread(api.ok, "publish", {"topic": "room:b", "data": "nobody"})
        check(r == {"delivered": 0}, f"publish to a topic without members: {r}")
    await checks.arun("publish: JSON data as its text, strings as content, exclude", publish)

    async def users():
        for n, user in (("A", "alice"), ("C", "alice"), ("B", "bob")):
            r = await asyncio.to_thread(api.ok, "bind", {"client": ids[n], "user": user})
            check(r == {"ok": True}, f"bind {n} to {user}: {r}")
        r = await asyncio.to_thread(api.ok, "bind", {"client": "t1-ffffffff", "user": "carol"})
        check(r == {"ok": False}, f"bind of an unknown client: {r}")
        r = await asyncio.to_thread(api.ok, "send_to_user", {"user": "alice", "data": {"to": "alice"}})
        check(r == {"delivered": 2}, f"send_to_user alice: {r}")
        await expect_data(A, '{"to":"alice"}', "send_to_user")
        await expect_data(C, '{"to":"alice"}', "send_to_user")
        r = await asyncio.to_thread(api.ok, "send_to_user", {"user": "nobody", "data": "x"})
        check(r == {"delivered": 0}, f"send_to_user of an unknown user: {r}")
        status, _, r = await asyncio.to_thread(api.get, "online?user=alice")
        check(status == 200 and r.get("online") is True and sorted(r.get("clients", [])) == sorted([ids["A"], ids["C"]]),
              f"online alice: {status} {r}")
        status, _, r = await asyncio.to_thread(api.get, "online?users=alice,bob,nobody")
        check(status == 200 and r == {"online": {"alice": True, "bob": True, "nobody": False}}, f"online users: {r}")
        status, _, r = await asyncio.to_thread(api.get, "presence?topic=room:a")
        check(status == 200 and r.get("connection_count") == 2 and r.get("user_count") == 2
              and sorted((u["user"], u["connections"]) for u in r.get("users", [])) == [("alice", 1), ("bob", 1)],
              f"presence room:a: {r}")
        r = await asyncio.to_thread(api.ok, "unbind", {"client": ids["C"]})
        check(r == {"ok": True}, f"unbind C: {r}")
        r = await asyncio.to_thread(api.ok, "send_to_user", {"user": "alice", "data": "A only"})
        check(r == {"delivered": 1}, f"send_to_user after unbind: {r}")
        await expect_data(A, "A only", "send_to_user after unbind")
        await marker(api, everyone, "after-users")
    await checks.arun("bind, send_to_user (unknown user: 0), online, presence, unbind", users)

    async def addressing():
        r = await asyncio.to_thread(api.ok, "send_to_client", {"client": ids["D"], "data": "just D"})
        check(r == {"delivered": 1}, f"send_to_client: {r}")
        await expect_data(D, "just D", "send_to_client")
        r = await asyncio.to_thread(api.ok, "send_to_client", {"client": "t1-ffffffff", "data": "x"})
        check(r == {"delivered": 0}, f"send_to_client of an unknown client: {r}")
        r = await asyncio.to_thread(api.ok, "broadcast", {"data": [1, 2, 3], "exclude": [ids["E"], ids["B"]]})
        check(r == {"delivered": 3}, f"broadcast with exclude: {r}")
        for c in (A, C, D):
            await expect_data(c, "[1,2,3]", "broadcast")
        r = await asyncio.to_thread(api.ok, "join", {"client": ids["E"], "topic": "room:b"})
        check(r == {"ok": True}, f"join: {r}")
        r = await asyncio.to_thread(api.ok, "publish", {"topic": "room:b", "data": "in b"})
        check(r == {"delivered": 1}, f"publish after join: {r}")
        await expect_data(E, "in b", "publish after a server-side join")
        r = await asyncio.to_thread(api.ok, "leave", {"client": ids["E"], "topic": "room:b"})
        check(r == {"ok": True}, f"leave: {r}")
        r = await asyncio.to_thread(api.ok, "publish", {"topic": "room:b", "data": "after leave"})
        check(r == {"delivered": 0}, f"publish after leave: {r}")
        await marker(api, everyone, "after-addressing")
    await checks.arun("send_to_client, broadcast with exclude, join, leave", addressing)

    async def batch():
        cmds = [{"cmd": "publish", "topic": "room:a", "data": "b1"},
                {"cmd": "send_to_client", "client": ids["D"], "data": "b2"},
                {"cmd": "publish", "data": "no topic"},
                {"cmd": "send_to_user", "user": "nobody", "data": "b3"},
                {"cmd": "explode"}]
        status, _, r = await asyncio.to_thread(api.post, "batch", {"commands": cmds})
        check(status == 200, f"batch: {status} {r}")
        res = r.get("results", [])
        check(len(res) == 5, f"batch results: {r}")
        check(res[0] == {"delivered": 2} and res[1] == {"delivered": 1} and res[3] == {"delivered": 0},
              f"batch results: {res}")
        check(res[2].get("status") == 400 and 'missing field "topic"' in res[2].get("error", ""), f"{res[2]}")
        check(res[4].get("status") == 400 and "explode" in res[4].get("error", ""), f"{res[4]}")
        await expect_data(A, "b1", "batch publish")
        await expect_data(B, "b1", "batch publish")
        await expect_data(D, "b2", "batch send_to_client")
        status, _, r = await asyncio.to_thread(api.post, "batch", {"commands": [{"cmd": "info"}] * (MAX_BATCH + 1)})
        check(status == 413 and str(MAX_BATCH) in r.get("error", ""), f"batch over max_batch: {status} {r}")
        status, _, r = await asyncio.to_thread(api.post, "batch", {"commands": "no"})
        check(status == 400, f"batch of a string: {status} {r}")
        await marker(api, everyone, "after-batch")
    await checks.arun("batch: results per command, bounded (413)", batch)

    def malformed():
        for raw, want in ((b'{"topic":"room:a","data":', "malformed JSON"),
                          (b'{"topic":"room:a","data":1} trailing', "malformed JSON"),
                          (b'[1,2]', "JSON object"),
                          (b'', "malformed JSON"),
                          (b'{"data":1}', 'missing field "topic"'),
                          (b'{"topic":7,"data":1}', '"topic" must be a string'),
                          (b'{"topic":"has space","data":1}', 'invalid "topic"')):
            status, _, r = api.post("publish", raw)
            check(status == 400 and want in r.get("error", ""), f"{raw!r}: expected 400 with {want!r}, got {status} {r}")
        status, _, r = api.post("send_to_user", {"data": 1})
        check(status == 400 and 'missing field "user"' in r.get("error", ""), f"{status} {r}")
        status, _, r = api.post("disconnect", {"code": 1000})
        check(status == 400 and '"client" or "user"' in r.get("error", ""), f"{status} {r}")
        status, _, r = api.get("presence")
        check(status == 400 and '"topic"' in r.get("error", ""), f"presence without topic: {status} {r}")
        status, _, r = api.get("online")
        check(status == 400, f"online without user: {status} {r}")
    checks.run("malformed JSON and missing fields: 400 naming the field", malformed)

    def info():
        status, _, r = api.get("info")
        check(status == 200 and r.get("node") == "t1" and r.get("connections") == 5 and r.get("users") == 2,
              f"info: {status} {r}")
        check(isinstance(r.get("topics"), int) and r["topics"] >= len(TOPICS), f"info topics: {r}")
    checks.run("info: node, connections, users, topics", info)

    def limits():
        # Past max_body_bytes: 413, decided on the head, before any of the body is sent.
        resp = raw_http(port, post_head("/api/publish", MAX_BODY + 1), until=b"\r\n\r\n")
        check(resp.status == 413, f"body over the limit: {resp}")
        resp = raw_http(port, post_head("/api/publish", 10**15), until=b"\r\n\r\n")
        check(resp.status == 413, f"a huge Content-Length: {resp}")
        resp = raw_http(port, (f"POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode(), until=b"\r\n\r\n")
        check(resp.status == 411, f"chunked: {resp}")
        resp = raw_http(port, (f"GET /api/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                               "Content-Length: 2\r\n\r\n{}").encode(), until=b"\r\n\r\n")
        check(resp.status == 400, f"a body on GET: {resp}")
        # At the limit: accepted.
        data = "x" * (MAX_BODY - len('{"topic":"room:b","data":""}'))
        status, _, r = api.post("publish", {"topic": "room:b", "data": data})
        check(status == 200, f"a body of exactly max_body_bytes: {status} {r}")
        # A short body, then silence: closed at the handshake timeout, unanswered.
        s = tcp_connect(port, timeout=10)
        try:
            t0 = time.monotonic()
            s.sendall(post_head("/api/publish", 100) + b'{"topic":"room:b",')
            got, ended = recv_until_closed(s, 10)
            took = time.monotonic() - t0
            check(got == b"" and ended in ("eof", "reset"), f"short body: got {got!r}, ended {ended}")
            check(took < HANDSHAKE_MS / 1000 + 3, f"short body: closed after {took:.1f} s")
        finally:
            s.close()
        # Pipelined POSTs with bodies in one write: answered in order, each body its own.
        one = b'{"topic":"room:b","data":"p1"}'
        two = b'{"topic":"room:b"}'
        three = b'{"topic":"room:b","data":"p3"}'
        req = (post_head("/api/publish", len(one)) + one + post_head("/api/publish", len(two)) + two
               + post_head("/api/publish", len(three), "Connection: close\r\n") + three)
        resp = raw_http(port, req)
        check(statuses(resp.raw) == [200, 400, 200], f"pipelined: {statuses(resp.raw)} {resp.raw!r}")
        check(b'missing field \\"data\\"' in resp.raw or b'missing field "data"' in resp.raw, f"{resp.raw!r}")
        # Expect: 100-continue: 100 first, then the answer once the body came.
        s = tcp_connect(port, timeout=10)
        try:
            s.sendall(post_head("/api/info", 2, "Expect: 100-continue\r\n").replace(b"/api/info", b"/api/broadcast"))
            got, _ = recv_until_closed(s, 5, b"\r\n\r\n")
            check(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), f"100-continue: {got!r}")
            s.sendall(b"{}")
            got, _ = recv_until_closed(s, 5, b"}\n")
            check(b"HTTP/1.1 400" in got and b'missing field' in got, f"after 100-continue: {got!r}")
        finally:
            s.close()
        # The clients' listener still refuses every body.
        resp = raw_http(relay.port, post_head("/api/publish", 2) + b"{}", until=b"\r\n\r\n")
        check(resp.status == 400, f"a body on the public listener: {resp}")
        resp = raw_http(relay.port, post_head("/api/publish", 0), until=b"\r\n\r\n")
        check(resp.status == 404, f"the API on the public listener: {resp}")
    checks.run("bodies: 413, huge Content-Length, 411, GET body, short body timeout, pipelining, 100-continue, "
               "public listener", limits)

    async def disconnect():
        r = await asyncio.to_thread(api.ok, "disconnect", {"client": ids["D"], "code": 4000, "reason": "bye"})
        check(r == {"closed": 1}, f"disconnect D: {r}")
        await asyncio.wait_for(D.closed.wait(), 10)
        check(D.close_code == 4000 and D.close_reason == "bye", f"D: {D.describe_close()}")
        r = await asyncio.to_thread(api.ok, "disconnect", {"user": "alice"})
        check(r == {"closed": 1}, f"disconnect user alice (A; C was unbound): {r}")
        await asyncio.wait_for(A.closed.wait(), 10)
        check(A.close_code == 1000, f"A: {A.describe_close()}")
        r = await asyncio.to_thread(api.ok, "disconnect", {"client": ids["D"]})
        check(r == {"closed": 0}, f"disconnect of a closed client: {r}")
        await marker(api, [(B, ids["B"]), (C, ids["C"]), (E, ids["E"])], "after-disconnect")
    await checks.arun("disconnect a client (code, reason) and a user", disconnect)

    async def rotation():
        key3 = "third-key-after-sighup-0123456789"
        write_file(d, "api.keys", f"{KEY}\n{key3}\n")
        mark = relay.line_count()
        relay.proc.send_signal(signal.SIGHUP)
        await relay.wait_line(r"SIGHUP: API keys reloaded from .*: 2 in use", after=mark, what="the API key reload")
        for key, want in ((KEY, 200), (key3, 200), (OTHER_KEY, 401)):
            a = Api(port, key, "x-api-key")
            status, _, r = await asyncio.to_thread(a.get, "info")
            check(status == want, f"after the reload, key {key!r}: {status} (expected {want})")
            a.close()
        write_file(d, "api.keys", "# nothing\n")
        mark = relay.line_count()
        relay.proc.send_signal(signal.SIGHUP)
        await relay.wait_line(r"SIGHUP: API key file .* refused, keeping the 2 keys in use", after=mark,
                              what="a bad key file refused")
        a = Api(port, key3)
        status, _, r = await asyncio.to_thread(a.get, "info")
        check(status == 200, f"after a refused reload, the keys in use still work: {status} {r}")
        a.close()
    await checks.arun("SIGHUP rereads the key file (rotation); a bad file keeps the keys in use", rotation)

    api.close()
    for c in clients.values():
        await c.close()
    check(relay.alive(), "relay died: " + relay.describe_death())

    def no_key_no_api():
        other = Relay(args.relay, ["--stats-interval", "0", "--listen", f"{HOST}:0"], name="relay-without-api")
        try:
            a = Api(other.admin_port)
            status, _, _ = a.post("publish", {"topic": "x", "data": 1})
            check(status == 400, f"no API: a POST body on the admin listener: {status} (bodies refused there too)")
            a = Api(other.admin_port)
            status, _, _ = a.get("info")
            check(status == 404, f"no API: GET /api/info: {status}")
            a.close()
        finally:
            other.terminate()
    checks.run("without [api] key_file: no API (404), no bodies", no_key_no_api)

    checks.finish()
    check(relay.terminate() == 0, "relay exit code")


if __name__ == "__main__":
    run_relay_test("server_api", body, timeout=120)

#!/usr/bin/python3
"""fanout::Gateway over real sockets: fanout-test-server --gateway n1, driven through its test-only
/gw/* GET routes (scaffolding until the server API lands; test_server.cpp).

  /usr/bin/python3 tests/integration/test_gateway.py --server build/tests/integration/fanout-test-server

Users come from the tokens' `sub` (HS256, bound automatically when a connection opens) and from
/gw/bind. Checks:
  * every client learns its id "n1-<hex>"; the gateway counts connections and users;
  * send_to_user reaches each of a user's connections and nobody else; send_to_client one;
  * send_to_all with an exclude list skips exactly those;
  * a server-side join puts a connection in a topic, and a publish then reaches it;
  * publish with exclude reaches the topic's members but the excluded one;
  * presence: {"op":"presence"} lists users with their connection counts, bounded by max_list
    (truncated, count exact); a subscribe with "presence":true gets join/leave events when a user's
    first connection joins and its last leaves (not for a second connection);
  * topic_clients is bounded by max_list while topic_client_count stays exact;
  * close_user closes every connection of the user (1000) and the user goes offline;
  * a server without a gateway answers the presence op with error 4501.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import HOST, Server, WsClient, check, log, run_test  # noqa: E402

SECRET = "gateway-integration-secret-0123456789abcdef"
MAX_LIST = 3


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(sub: str) -> str:
    h = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    c = b64url(json.dumps({"sub": sub, "exp": int(time.time()) + 600}).encode())
    sig = hmac.new(SECRET.encode(), f"{h}.{c}".encode(), hashlib.sha256).digest()
    return f"{h}.{c}.{b64url(sig)}"


class Gw:
    """The test server's /gw/* routes."""

    def __init__(self, port: int):
        self.port = port

    def _get(self, route: str, **params) -> dict:
        url = f"http://{HOST}:{self.port}/gw/{route}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            check(r.status == 200, f"GET {url}: {r.status}")
            return json.loads(r.read())

    async def get(self, route: str, **params) -> dict:
        return await asyncio.to_thread(self._get, route, **params)

    async def wait(self, what: str, pred, timeout: float = 10, **params) -> dict:
        """Polls /gw/query until pred(answer) holds (the awaited change happened) or times out."""
        deadline = time.monotonic() + timeout
        while True:
            q = await self.get("query", **params)
            if pred(q):
                return q
            check(time.monotonic() < deadline, f"{what}: not within {timeout} s; last answer {q}")
            await asyncio.sleep(0.02)


async def open_client(port: int, sub: str) -> tuple[WsClient, str]:
    c = await WsClient.open(port, name=sub, extra_headers={"Authorization": f"Bearer {token(sub)}"})
    _, hello = await c.expect_event("hello")
    check(hello["user"] == sub, f"{sub}: the token's sub is the connection's user: {hello}")
    check(hello["client_id"].startswith("n1-"), f"{sub}: client id {hello['client_id']!r}")
    return c, hello["client_id"]


async def data(c: WsClient, expected: str):
    _, m = await c.next_data()
    if m != expected:  # pending_data() drains the queue: only once it failed
        check(False, f"{c.name}: expected {expected!r}, got {m!r} (then {c.pending_data()})")


async def body(args):
    keys = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"keys": [{"kid": "k1", "alg": "HS256", "secret": SECRET}]}, keys)
    keys.close()
    # subscribe_timeout off: some connections here are joined to topics by the server, later.
    server = Server(args.server, ["--shards", 2, "--auth-key-file", keys.name, "--subscribe-timeout-ms", 0,
                                  "--gateway", "n1", "--gateway-max-list", MAX_LIST])
    gw = Gw(server.port)

    alice1, a1 = await open_client(server.port, "alice")
    alice2, a2 = await open_client(server.port, "alice")
    bob, b = await open_client(server.port, "bob")
    carol, c = await open_client(server.port, "carol")
    check(len({a1, a2, b, c}) == 4, "client ids are unique")
    q = await gw.wait("4 connections, 3 users", lambda q: q["connections"] == 4 and q["users"] == 3, user="alice")
    check(q["online"] and sorted(q["clients_of_user"]) == sorted([a1, a2]), f"alice's connections: {q}")

    log("send_to_user / send_to_client: the addressed connections and nobody else")
    check((await gw.get("send_to_user", user="alice", text="to-alice"))["n"] == 2, "send_to_user addressed 2")
    check((await gw.get("send_to_user", user="nobody", text="x"))["n"] == 0, "unknown user: 0")
    check((await gw.get("send_to_client", client=b, text="to-bob"))["n"] == 1, "send_to_client addressed 1")
    check((await gw.get("send_to_client", client=c, text="to-carol"))["n"] == 1, "send_to_client addressed 1")
    await data(alice1, "to-alice")
    await data(alice2, "to-alice")
    await data(bob, "to-bob")  # not to-alice
    await data(carol, "to-carol")

    log("send_to_all with exclude")
    check((await gw.get("send_to_all", text="all-1", exclude=f"{b},{c}"))["n"] == 2, "send_to_all addressed 2")
    check((await gw.get("send_to_all", text="all-2"))["n"] == 4, "send_to_all addressed 4")
    for cl in (alice1, alice2):
        await data(cl, "all-1")
    for cl in (alice1, alice2, bob, carol):
        await data(cl, "all-2")  # bob and carol never got all-1

    log("presence watcher, client subscribes, server-side join, then publish")
    await alice1.send_json({"op": "subscribe", "args": ["room"], "presence": True})
    await alice1.expect_event("subscribe", arg="room")
    await carol.send_json({"op": "subscribe", "args": ["room"]})
    await carol.expect_event("subscribe", arg="room")
    await alice1.expect_event("join", arg="room", user="carol")
    check((await gw.get("join", client=b, topic="room"))["ok"], "join bob")
    await alice1.expect_event("join", arg="room", user="bob")
    q = await gw.wait("bob joined room", lambda q: q["topic_client_count"] == 3, topic="room")
    check(q["topic_user_count"] == 3, f"3 users in room: {q}")
    check((await gw.get("publish", topic="room", text="m1"))["n"] == 3, "publish addressed 3")
    for cl in (alice1, bob, carol):
        await data(cl, "m1")

    log("publish with exclude")
    check((await gw.get("publish", topic="room", text="m2", exclude=c))["n"] == 2, "publish-exclude addressed 2")
    check((await gw.get("publish", topic="room", text="m3"))["n"] == 3, "publish addressed 3")
    for cl in (alice1, bob):
        await data(cl, "m2")
        await data(cl, "m3")
    await data(carol, "m3")  # never m2

    log("presence list, bounded; a second connection of a user is no join")
    await alice1.send_json({"op": "presence", "arg": "room"})
    _, p = await alice1.expect_event("presence", arg="room")
    check(p["count"] == 3 and not p["truncated"], f"presence: {p}")
    check(p["users"] == [{"user": u, "connections": 1} for u in ("alice", "bob", "carol")], f"presence: {p}")
    await alice2.send_json({"op": "subscribe", "args": ["room"]})
    await alice2.expect_event("subscribe", arg="room")
    dave, d = await open_client(server.port, "dave")
    check((await gw.get("join", client=d, topic="room"))["ok"], "join dave")
    await alice1.expect_event("join", arg="room", user="dave")  # not alice (her second connection)
    q = await gw.wait("5 in room", lambda q: q["topic_client_count"] == 5, topic="room")
    check(len(q["topic_clients"]) == MAX_LIST and q["topic_user_count"] == 4, f"bounded lists: {q}")
    check(len(q["topic_users"]) == MAX_LIST, f"bounded presence: {q}")
    await alice1.send_json({"op": "presence", "arg": "room"})
    _, p = await alice1.expect_event("presence", arg="room")
    check(p["count"] == 4 and p["truncated"] and len(p["users"]) == MAX_LIST, f"truncated presence: {p}")
    want = {"alice": 2, "bob": 1, "carol": 1, "dave": 1}
    check(all(want[m["user"]] == m["connections"] for m in p["users"]), f"connection counts (alice 2): {p}")

    log("leave events: a server-side leave, and a connection that ends")
    check((await gw.get("leave", client=b, topic="room"))["ok"], "leave bob")
    await alice1.expect_event("leave", arg="room", user="bob")
    await carol.ws.close()
    await alice1.expect_event("leave", arg="room", user="carol")
    await gw.wait("carol offline", lambda q: not q["online"], user="carol")

    log("bind moves a connection to another user; close_user")
    check((await gw.get("bind", client=d, user="alice"))["ok"], "bind dave's connection to alice")
    await alice1.expect_event("leave", arg="room", user="dave")
    q = await gw.wait("alice has 3 connections", lambda q: len(q["clients_of_user"]) == 3, user="alice")
    check(not (await gw.get("bind", client="n1-ffffffff", user="x"))["ok"], "bind of an unknown client")
    check((await gw.get("close_user", user="alice"))["n"] == 3, "close_user addressed 3")
    for cl in (alice1, alice2, dave):
        await asyncio.wait_for(cl.closed.wait(), 10)
        check(cl.close_code == 1000, f"{cl.name}: close {cl.describe_close()}")
    await gw.wait("alice offline", lambda q: not q["online"] and q["connections"] == 1, user="alice")
    await bob.ws.close()
    await gw.wait("nobody left", lambda q: q["connections"] == 0 and q["users"] == 0)

    log("a server without a gateway: presence is not served")
    plain = Server(args.server, [], name="plain")
    cl = await WsClient.open(plain.port, name="plain")
    await cl.send_json({"op": "presence", "arg": "room"})
    await cl.expect_event("error", code=4501)
    await cl.ws.close()
    os.unlink(keys.name)


if __name__ == "__main__":
    run_test("gateway", body)

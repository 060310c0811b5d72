#!/usr/bin/python3
"""The Gateway across nodes (docs/cluster.md): two edge relays over a real redis-server.

  /usr/bin/python3 tests/integration/test_gateway_cluster.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Edges A and B (nodes "ea", "eb"), each with the server API on its admin listener and a presence
ttl of 1 s. Clients learn their ids through their own node's API (each joins a topic of its own).
Checks, against what the clients receive byte for byte:
  1. bind through A's API a client of B (forwarded by node) and one of A to the same user u1;
     send_to_user u1 through A's API reaches both, once each; u2 (on B only) gets nothing;
  2. is_online through A's API (/api/online) sees users of B; send_to_client through A to B's client;
     publish through A to a topic whose member is on B;
  3. business code's one Redis command (PUBLISH and XADD over a raw RESP socket) reaches users on both;
  4. garbage on the channel and the stream (not JSON, 2 MB, unknown command, missing fields, deep
     nesting, no command field) is counted and ignored, both nodes keep serving;
  5. a client of B leaves: A stops seeing its user online;
  6. redis-server restarts (empty): presence comes back and later commands (API and PUBLISH) arrive;
  7. B is killed (SIGKILL): A sees B's users offline within the presence ttl (+ a heartbeat);
  8. Redis stops: A's API answers 503 for B's client, and runs a user's send here without "forwarded".
"""

import asyncio
import os
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_testlib import Redis  # noqa: E402
from fanout_testlib import WsClient  # noqa: E402
from relay_testlib import HOST, Checks, Relay, check, fail, log, run_relay_test, write_file  # noqa: E402
from test_server_api import Api, client_id, expect_data  # noqa: E402

KEY = "cluster-api-key-0123456789abcdef"
TTL_MS = 1000
TOPICS = [f"me:{n}" for n in ("a1", "b1", "b2", "b3")]


def resp(port: int, *args: str | bytes):
    """One command over a fresh connection, its reply parsed (RESP2): int, bytes, list, None, or an
    Exception for an error reply."""
    def encode(a):
        b = a if isinstance(a, bytes) else str(a).encode()
        return b"$%d\r\n%s\r\n" % (len(b), b)
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(b"*%d\r\n" % len(args) + b"".join(encode(a) for a in args))
        f = s.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b":":
                return int(rest)
            if kind == b"+":
                return rest
            if kind == b"-":
                return Exception(rest.decode())
            if kind == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)
                return data[:-2]
            if kind == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            fail(f"redis: unexpected reply {line!r}")
        return read()


async def until(pred, what: str, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        r = await asyncio.to_thread(pred)
        if r:
            return r
        if time.monotonic() > deadline:
            fail(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.05)


def online(api: Api, users: list[str]) -> dict:
    status, _, r = api.get("online?users=" + ",".join(users))
    check(status == 200, f"online: {status} {r}")
    return r["online"]


def edge(path: str, redis: Redis, node: str, d: str) -> Relay:
    keys = write_file(d, f"{node}.keys", KEY + "\n")
    conf = write_file(d, f"{node}.toml", f"""
[topics]
declare = [{", ".join(f'"{t}"' for t in TOPICS)}]
[api]
key_file = "{keys}"
[gateway]
node = "{node}"
""")
    return Relay(path, ["--role", "edge", "--redis", f"{HOST}:{redis.port}", "--config", conf,
                        "--listen", f"{HOST}:0", "--presence-ttl-ms", TTL_MS, "--stats-interval", 1], name=node)


def gateway_stats(relay: Relay) -> dict:
    """The last "gateway: commands received N executed N ..." stats line, as {word: number}."""
    for line in reversed(relay.lines()):
        if "gateway: commands received" in line:
            words = line.split("gateway: ", 1)[1].replace("|", "").split()
            return {k: int(v) for k, v in zip(words, words[1:]) if v.isdigit()}
    return {}


async def body(args):
    checks = Checks()
    d = tempfile.mkdtemp(prefix="fanout-gw-cluster-")
    redis = Redis()
    a = edge(args.relay, redis, "ea", d)
    b = edge(args.relay, redis, "eb", d)
    api_a, api_b = Api(a.admin_port, KEY), Api(b.admin_port, KEY)
    # Both nodes consume the command channel once their links are up.
    await until(lambda: resp(redis.port, "PUBSUB", "NUMSUB", "fanout:cmd")[1] == 2, "both nodes on fanout:cmd")

    clients, ids = {}, {}
    for name, relay, api in (("a1", a, api_a), ("b1", b, api_b), ("b2", b, api_b), ("b3", b, api_b)):
        c = await WsClient.open(relay.port, f"/ws?subscribe=me:{name}", name=name)
        await c.expect_event("subscribe", arg=f"me:{name}")
        clients[name] = c
        ids[name] = await client_id(api, f"me:{name}")
    log(f"client ids: {ids}")
    check(ids["a1"].startswith("ea-") and ids["b1"].startswith("eb-"), f"client ids name their node: {ids}")
    a1, b1, b2, b3 = (clients[n] for n in ("a1", "b1", "b2", "b3"))

    async def marker(pairs, text):
        """Sent to each client alone through A's API: its next message, so nothing came before it."""
        for c, cid in pairs:
            await asyncio.to_thread(api_a.ok, "send_to_client", {"client": cid, "data": text})
            await expect_data(c, text, "the marker (nothing else before it)")

    everyone = [(clients[n], ids[n]) for n in ("a1", "b1", "b2", "b3")]

    async def send_to_user():
        # B's client bound through A's API: forwarded to B by the node in its id.
        r = await asyncio.to_thread(api_a.ok, "bind", {"client": ids["b1"], "user": "u1"})
        check(r == {"forwarded": True}, f"bind of another node's client: {r}")
        r = await asyncio.to_thread(api_a.ok, "bind", {"client": ids["a1"], "user": "u1"})
        check(r == {"ok": True}, f"bind of a client of this node: {r}")
        await asyncio.to_thread(api_b.ok, "bind", {"client": ids["b2"], "user": "u2"})
        await asyncio.to_thread(api_b.ok, "bind", {"client": ids["b3"], "user": "u3"})
        await until(lambda: online(api_a, ["u1", "u2", "u3"]) == {"u1": True, "u2": True, "u3": True},
                    "A sees u1, u2, u3 online")
        data = '{"hello":"world","n":[1,2.50,"\\u00e9"]}'
        status, _, r = await asyncio.to_thread(api_a.post, "send_to_user",
                                               f'{{"user":"u1","data":{data}}}'.encode())
        check(status == 200 and r == {"delivered": 1, "forwarded": True}, f"send_to_user through A: {status} {r}")
        await expect_data(a1, data, "send_to_user on A's own client")
        await expect_data(b1, data, "send_to_user on B's client (through Redis)")
        await marker(everyone, "after-send-to-user")  # once each; b2, b3 got nothing
    await checks.arun("send_to_user through A's API: A's and B's connections of u1, byte for byte, once", send_to_user)

    async def is_online_and_client():
        r = online(api_a, ["u1", "u2", "nobody"])
        check(r == {"u1": True, "u2": True, "nobody": False}, f"A: online: {r}")
        status, _, r = await asyncio.to_thread(api_a.get, "info")
        check(status == 200 and r.get("users") == 1 and r.get("cluster_users") == 3,
              f"A: info: 1 user here, 3 in the cluster: {r}")
        status, _, r = await asyncio.to_thread(api_a.get, "online?user=u2")
        check(status == 200 and r.get("online") is True and r.get("clients") == [],
              f"A: a user of B only: online, no client here: {r}")
        r = await asyncio.to_thread(api_a.ok, "send_to_client", {"client": ids["b2"], "data": "direct"})
        check(r == {"forwarded": True}, f"send_to_client of B's client through A: {r}")
        await expect_data(b2, "direct", "send_to_client routed to B")
        # A topic's members on another node: live there (a bus numbers an edge's topics).
        r = await asyncio.to_thread(api_a.ok, "publish", {"topic": "me:b1", "data": "to the group"})
        check(r == {"delivered": 0, "forwarded": True}, f"publish through A to a topic with members on B: {r}")
        await expect_data(b1, "to the group", "publish through A to B's members")
        r = await asyncio.to_thread(api_a.ok, "publish", {"topic": "me:a1", "data": "live here"})
        check(r == {"delivered": 1, "forwarded": True}, f"publish through A to its own member: {r}")
        await expect_data(a1, "live here", "publish through A to A's member")
        status, _, r = await asyncio.to_thread(api_a.get, "info")
        check(r.get("published") == 0, f"an edge's API publish is live, not numbered by its hub: {r}")
        await marker(everyone, "after-direct")
    await checks.arun("is_online through A sees B's users; send_to_client through A reaches B's client",
                      is_online_and_client)

    async def redis_one_liner():
        n = await asyncio.to_thread(resp, redis.port, "PUBLISH", "fanout:cmd",
                                    '{"cmd":"send_to_user","user":"u1","data":"from php"}')
        check(n == 2, f"PUBLISH fanout:cmd reached {n} nodes, expected 2")
        await expect_data(a1, "from php", "PUBLISH to u1 on A")
        await expect_data(b1, "from php", "PUBLISH to u1 on B")
        r = await asyncio.to_thread(resp, redis.port, "XADD", "fanout:cmd", "MAXLEN", "~", "1000", "*", "command",
                                    '{"cmd":"broadcast","data":{"x":1}}')
        check(isinstance(r, bytes), f"XADD: {r}")
        for c in (a1, b1, b2, b3):
            await expect_data(c, '{"x":1}', "XADD broadcast")
        await marker(everyone, "after-redis")
    await checks.arun("PUBLISH and XADD from a raw Redis client reach users on both nodes", redis_one_liner)

    async def garbage():
        before = {r.name: gateway_stats(r) for r in (a, b)}
        junk = ["not json", "x" * (2 << 20), '{"cmd":"explode"}', '{"cmd":"send_to_user","data":"no user"}',
                "[" * 100_000, '{"cmd":1}', "", "\xff\xfe"]
        for j in junk:
            await asyncio.to_thread(resp, redis.port, "PUBLISH", "fanout:cmd", j.encode("utf-8", "surrogateescape")
                                    if isinstance(j, str) else j)
        await asyncio.to_thread(resp, redis.port, "XADD", "fanout:cmd", "*", "nocommand", "x")
        await asyncio.to_thread(resp, redis.port, "XADD", "fanout:cmd", "*", "command", "{{{")
        for r in (a, b):
            check(r.alive(), f"{r.name} died on garbage")

        def counted(r):
            s = gateway_stats(r)
            return s.get("malformed", 0) - before[r.name].get("malformed", 0) >= 8 and \
                s.get("failed", 0) - before[r.name].get("failed", 0) >= 2
        await until(lambda: counted(a) and counted(b), "garbage counted on both nodes (stats line)")
        log(f"    stats: A {gateway_stats(a)}; B {gateway_stats(b)}")
        await marker(everyone, "after-garbage")
    await checks.arun("garbage on the channel and the stream: counted, ignored, both nodes serve on", garbage)

    async def client_leaves():
        await b3.close()
        await until(lambda: online(api_a, ["u3"]) == {"u3": False}, "A sees u3 offline after its client left")
    await checks.arun("a client of B leaves: A sees its user offline", client_leaves)

    async def redis_restart():
        await redis.astop()
        await redis.astart()
        await until(lambda: resp(redis.port, "PUBSUB", "NUMSUB", "fanout:cmd")[1] == 2,
                    "both nodes subscribed again", timeout=20)
        await until(lambda: online(api_a, ["u1", "u2"]) == {"u1": True, "u2": True}
                    and resp(redis.port, "SCARD", "fanout:presence:eb") == 2
                    and resp(redis.port, "ZCARD", "fanout:nodes") == 2, "presence written again", timeout=20)
        r = await asyncio.to_thread(api_a.ok, "send_to_user", {"user": "u1", "data": "after restart"})
        check(r == {"delivered": 1, "forwarded": True}, f"send_to_user after the restart: {r}")
        await expect_data(a1, "after restart", "after a Redis restart, on A")
        await expect_data(b1, "after restart", "after a Redis restart, on B")
        n = await asyncio.to_thread(resp, redis.port, "PUBLISH", "fanout:cmd",
                                    '{"cmd":"send_to_user","user":"u2","data":"published after restart"}')
        check(n == 2, f"PUBLISH after restart reached {n} nodes")
        await expect_data(b2, "published after restart", "PUBLISH after a Redis restart")
        await marker(everyone[:3], "after-restart")
    await checks.arun("redis-server restarts: presence comes back, later commands arrive", redis_restart)

    async def node_dies():
        t0 = time.monotonic()
        b.proc.send_signal(signal.SIGKILL)
        await until(lambda: online(api_a, ["u1", "u2"]) == {"u1": True, "u2": False},
                    "A sees B's users offline after B died", timeout=10)
        log(f"    B's users offline on A {time.monotonic() - t0:.2f} s after SIGKILL (ttl {TTL_MS} ms)")
        r = await asyncio.to_thread(api_a.ok, "send_to_user", {"user": "u1", "data": "still here"})
        check(r.get("delivered") == 1, f"A still serves u1: {r}")
        await expect_data(a1, "still here", "A after B died")
    await checks.arun("B is killed: A sees B's users offline within the presence ttl", node_dies)

    async def redis_down():
        await redis.astop()

        def refused():
            status, _, r = api_a.post("send_to_client", {"client": ids["b1"], "data": "x"})
            return status == 503 and "cannot be reached" in r.get("error", "")
        await until(refused, "send_to_client to another node's client with Redis down: 503")
        r = await asyncio.to_thread(api_a.ok, "send_to_user", {"user": "u1", "data": "local only"})
        check(r == {"delivered": 1}, f"send_to_user with Redis down: runs here, not forwarded: {r}")
        await expect_data(a1, "local only", "A's own client with Redis down")
    await checks.arun("Redis down: another node's client 503, a user's send runs here without forwarded",
                      redis_down)

    api_a.close()
    api_b.close()
    if checks.failed:
        fail(f"{len(checks.failed)} of {len(checks.failed) + len(checks.passed)} checks failed")


if __name__ == "__main__":
    run_relay_test("gateway_cluster", body, timeout=120)

#!/usr/bin/python3
"""fanout-relay's backend proxy ([proxy], docs/relay.md "Backend proxy") against a Python backend.

The backend (http.server, threaded, in this process) records every POST and answers by what the
request asks for: connect accepts with the `uid` of the query and the topic of `room`, refuses
(`deny`) or sleeps past the relay's timeout_ms (`slow`); rpc echoes its data (`echo`), answers an
error (`fail`) or sleeps (`slow`); message and disconnect are recorded. Later it goes down: the
listener closes and kept-alive connections are dropped unanswered.

Checked: accept with user + topics (the client gets the topic's messages without subscribing),
refuse (the client sees the status), rpc answered byte for byte to the same client, rpc error
from the backend, rpc and connect timeouts (4504 / 504), message and disconnect seen by the
backend with the client id and user of the connect, selected headers and cookies only (and no
cookie value in the relay's log), backend down (connect 502, rpc 4502). Throughout, a canary
subscriber keeps receiving a contiguous stream: fan-out never waits on the backend.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import HOST, WsClient, check, fail, log  # noqa: E402
from hostile_testlib import CANARY_STREAMS, Canary  # noqa: E402
from relay_testlib import (ROUTE, FeedSim, Relay, declare_toml, parse_sim_message,  # noqa: E402
                           run_command, run_relay_test, subscribe_msg, topic_of)

TIMEOUT_MS = 600
ROOM_STREAM = ("tickers", "ETH-USDT")
ROOM_TOPIC = topic_of(ROOM_STREAM)
STREAMS = [*CANARY_STREAMS, ROOM_STREAM]


class Backend:
    """The application's HTTP backend: records (path, body) and answers as the request asks."""

    def __init__(self):
        self.seen: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.down = False
        self.release = threading.Event()  # ends the sleeps at teardown
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the relay's workers expect

            def log_message(self, *a):
                pass

            def do_POST(self):
                if backend.down:  # no answer, connection dropped
                    self.close_connection = True
                    return
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsable": raw.decode("utf-8", "replace")}
                body["_content_type"] = self.headers.get("Content-Type")
                with backend.lock:
                    backend.seen.append((self.path, body))
                answer = backend.answer(self.path, body)
                if answer is None:
                    self.close_connection = True
                    return
                data = json.dumps(answer, separators=(",", ":")).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the relay gave up on a slow answer
                    self.close_connection = True

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, body: dict):
        if path.endswith("/connect"):
            q = urllib.parse.parse_qs(body.get("query", ""))
            if "slow" in q:  # ?slow=1: past TIMEOUT_MS; ?slow=S: S seconds (or until released)
                s = float(q["slow"][0])
                self.release.wait(s if s > 1 else TIMEOUT_MS * 3 / 1000)
                return {"accept": True}
            if "deny" in q:
                return {"accept": False, "status": 403, "reason": "not you"}
            topics = [ROOM_TOPIC] if "room" in q else []
            return {"accept": True, "user": q.get("uid", [""])[0], "topics": topics}
        if path.endswith("/rpc"):
            m = body.get("method")
            if m == "slow":
                self.release.wait(TIMEOUT_MS * 3 / 1000)
                return {"data": "late"}
            if m == "fail":
                return {"error": {"code": 4100, "msg": "nope"}}
            return {"data": body.get("data")}
        return {}

    def requests(self, suffix: str) -> list[dict]:
        with self.lock:
            return [b for p, b in self.seen if p.endswith(suffix)]

    async def wait_for(self, suffix: str, pred, what: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for b in self.requests(suffix):
                if pred(b):
                    return b
            if time.monotonic() > deadline:
                fail(f"backend: no {suffix} request {what} within {timeout} s; saw {self.seen}")
            await asyncio.sleep(0.02)

    def go_down(self):
        """Listener closed (new connections refused), kept-alive ones dropped unanswered."""
        self.down = True
        self.server.shutdown()
        self.server.server_close()

    def stop(self):
        self.release.set()
        if not self.down:
            self.go_down()


async def expect_refused(port: int, path: str, status: int, name: str):
    import websockets
    try:
        ws = await websockets.connect(f"ws://{HOST}:{port}{path}", open_timeout=15)
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == status, f"{name}: refused with {e.status_code}, want {status}")
        log(f"  {name}: refused with {e.status_code} as expected")
        return
    await ws.close()
    fail(f"{name}: was accepted, want HTTP {status}")


async def rpc(client: WsClient, rid: int, method: str, data_text: str, timeout: float = 10) -> tuple[str, dict]:
    """Sends an rpc (data as given, byte for byte) and returns the answer with this id, raw and parsed."""
    await client.send(f'{{"op":"rpc","id":{rid},"method":"{method}","data":{data_text}}}')
    deadline = time.monotonic() + timeout
    while True:
        idx, m = await client._next(client.events, f"the answer to rpc {rid}", max(0.1, deadline - time.monotonic()))
        d = json.loads(m)
        if d.get("id") == rid:
            return m, d


def bad_configs(args, tmp: str):
    """Every [proxy] key is checked at start: exit 2 naming the key (and the file, for its keys)."""
    ok = '[proxy]\nurl = "http://127.0.0.1:9/x"\n'
    cases = [("[proxy]\ntimeout_ms = 100\n", "needs a url"),
             ('[proxy]\nurl = "ftp://h/x"\n', "proxy.url"),
             (ok + 'events = ["connect", "close"]\n', "proxy.events"),
             (ok + "timeout_ms = 0\n", "proxy.timeout_ms"),
             (ok + "timeout_ms = 5000\n", "below server.handshake_timeout_ms"),
             (ok + "max_in_flight = 0\n", "proxy.max_in_flight"),
             (ok + "max_queue = 0\n", "proxy.max_queue"),
             (ok + 'headers = ["Bad Header"]\n', "proxy.headers"),
             (ok + "retries = 3\n", "unknown key 'retries'")]
    for i, (text, key) in enumerate(cases):
        path = os.path.join(tmp, f"bad{i}.toml")
        with open(path, "w") as f:
            f.write(text)
        rc, _, err = run_command([args.relay, "--check", "--config", path])
        whole = "handshake" in key  # checked on the whole configuration, after the file
        check(rc == 2 and (whole or path in err) and key in err,
              f"{text!r}: exit {rc}, expected 2 naming {path} and {key!r}; stderr {err!r}")
        log(f"  {err.strip()}")
    path = os.path.join(tmp, "good.toml")
    with open(path, "w") as f:
        f.write(ok + 'events = ["rpc"]\ntimeout_ms = 5000\n')  # no connect: no handshake deadline to meet
    rc, out, err = run_command([args.relay, "--check", "--config", path])
    check(rc == 0, f"a good [proxy]: exit {rc}; {err!r}")
    rc, out, _ = run_command([args.relay, "--version"])
    check(rc == 0 and "proxy" in out, f"--version does not list proxy: {out!r}")


async def metric(relay: Relay, name: str) -> float:
    text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://{HOST}:{relay.admin_port}/metrics", timeout=10).read().decode())
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    fail(f"{relay.name}: no {name} in /metrics")


async def busy(args, tmp: str, backend: Backend, sim: FeedSim):
    """One worker and a queue of one: with both taken, a connect gets 503, an rpc 4503 and a
    message an error event 4503, at once."""
    log("queue full: connect 503, rpc 4503, message 4503, at once")
    config = os.path.join(tmp, "busy.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
listen = "127.0.0.1:0"
[[upstream]]
name = "upstream"
url = "{sim.url}"
subscribe = '{subscribe_msg(STREAMS)}'
[upstream.route]
topic = "{ROUTE}"
{declare_toml(STREAMS)}
[proxy]
url = "http://127.0.0.1:{backend.port}/fanout"
timeout_ms = 4000
max_in_flight = 1
max_queue = 1
""")
    relay = Relay(args.relay, ["--config", config], name="relay-busy")
    u9 = await WsClient.open(relay.port, "/ws?uid=u9&room=1", name="u9")
    holders = []

    async def hold(tag: str):  # a connect the backend sits on; its outcome does not matter here
        import websockets
        try:
            ws = await websockets.connect(f"ws://{HOST}:{relay.port}/ws?slow=4&tag={tag}", open_timeout=15)
            await ws.close()
        except Exception:  # noqa: BLE001 - 504 once the queue wait ate its timeout
            pass
    holders.append(asyncio.ensure_future(hold("a")))
    await backend.wait_for("/connect", lambda b: "tag=a" in b.get("query", ""), "holding the worker")
    holders.append(asyncio.ensure_future(hold("b")))
    deadline = time.monotonic() + 3
    while await metric(relay, "fanout_relay_proxy_queued") < 1:
        check(time.monotonic() < deadline, "the second connect was not queued")
        await asyncio.sleep(0.02)
    t0 = time.monotonic()
    await expect_refused(relay.port, "/ws?uid=u10", 503, "connect while busy")
    _, d = await rpc(u9, 1, "echo", "1")
    check(d.get("event") == "error" and d.get("code") == 4503, f"rpc while busy answered {d}")
    await u9.send("lost")
    _, d = await u9.next_event(5, "the busy error of the message")
    check(d.get("event") == "error" and d.get("code") == 4503, f"message while busy: {d}")
    log(f"  all three answered in {time.monotonic() - t0:.2f} s, the backend still holding the worker")
    check(await metric(relay, 'fanout_relay_proxy_requests_total{result="busy"}') >= 3, "busy requests not counted")
    backend.release.set()
    await asyncio.gather(*holders)
    await u9.close()
    relay.terminate()


async def body(args):
    tmp = tempfile.mkdtemp(prefix="fanout-relay-proxy-")
    log("bad [proxy] settings: exit 2 with file and key")
    bad_configs(args, tmp)
    backend = Backend()
    sim = FeedSim(args.sim, rate=20)
    config = os.path.join(tmp, "relay.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
listen = "127.0.0.1:0"

[[upstream]]
name = "upstream"
url = "{sim.url}"
subscribe = '{subscribe_msg(STREAMS)}'
[upstream.route]
topic = "{ROUTE}"

{declare_toml(STREAMS)}
[proxy]
url = "http://127.0.0.1:{backend.port}/fanout/"
timeout_ms = {TIMEOUT_MS}
max_in_flight = 4
""")
    try:
        relay = Relay(args.relay, ["--config", config, "--stats-interval", "1"])
        await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
        await sim.wait_stats(lambda st: st["subscriptions"] == len(STREAMS), "the relay subscribed")
        port = relay.port

        canary = await Canary.open(port)
        mark = canary.mark()
        cb = await backend.wait_for("/connect", lambda b: True, "for the canary")
        check(cb["_content_type"] == "application/json", f"connect sent as {cb['_content_type']}")
        check(cb["path"] == "/ws" and cb["remote"] == "127.0.0.1", f"connect body {cb}")

        log("connect accepted with a user and a topic")
        u1 = await WsClient.open(port, "/ws?uid=u1&room=1", name="u1",
                                 extra_headers={"Cookie": "sid=abc123; theme=dark", "X-Secret": "s3cr3t"})
        c1 = await backend.wait_for("/connect", lambda b: b.get("query") == "uid=u1&room=1", "of u1")
        client_u1 = c1["client"]
        check(isinstance(client_u1, str) and re.fullmatch(r"[A-Za-z0-9_.]{1,32}-[0-9a-f]+", client_u1),
              f"connect body has no client id of the Gateway's form: {c1}")
        check(c1["headers"].get("Cookie") == "sid=abc123; theme=dark", f"Cookie not forwarded: {c1['headers']}")
        check(c1.get("cookies") == {"sid": "abc123", "theme": "dark"}, f"cookies: {c1.get('cookies')}")
        check("User-Agent" in c1["headers"], f"User-Agent not forwarded: {c1['headers']}")
        check(not any(k.lower() == "x-secret" for k in c1["headers"]), f"an unlisted header went: {c1['headers']}")
        _, m = await u1.next_data(10)  # joined by the backend's answer, no subscribe sent
        check(parse_sim_message(m, "u1")[0] == ROOM_TOPIC, f"u1 got {m[:120]}")
        log(f"  u1 is {client_u1}, receives {ROOM_TOPIC}")

        log("connect refused by the backend")
        await expect_refused(port, "/ws?deny=1", 403, "deny")

        log("message forwarded with the client id and user")
        await u1.send("hello backend")
        msg = await backend.wait_for("/message", lambda b: b.get("data") == "hello backend", "with the text")
        check(msg["client"] == client_u1 and msg["user"] == "u1", f"message body {msg}")

        log("rpc answered byte for byte to the same client")
        data_text = '{"a":[1,2.5,"x\\u00e9"],"b":{"c":null}}'
        raw, d = await rpc(u1, 7, "echo", data_text)
        check(d.get("event") == "rpc" and data_text in raw, f"rpc answer {raw!r}, want data {data_text}")
        r = await backend.wait_for("/rpc", lambda b: b.get("id") == 7, "id 7")
        check(r["client"] == client_u1 and r["user"] == "u1" and r["method"] == "echo", f"rpc body {r}")
        _, d = await rpc(u1, 8, "fail", "null")
        check(d.get("event") == "error" and d.get("code") == 4100 and d.get("msg") == "nope", f"rpc error {d}")

        log("timeouts: rpc 4504, connect 504; the canary keeps receiving")
        t0 = time.monotonic()
        _, d = await rpc(u1, 9, "slow", "{}")
        check(d.get("event") == "error" and d.get("code") == 4504, f"slow rpc answered {d}")
        log(f"  slow rpc: {d.get('code')} after {time.monotonic() - t0:.2f} s")
        await expect_refused(port, "/ws?slow=1", 504, "slow connect")
        await canary.check(since=mark, what="while the backend was slow")

        log("disconnect seen")
        u2 = await WsClient.open(port, "/ws?uid=u2", name="u2")
        await u2.subscribe(ROOM_TOPIC)
        await u1.close()
        dc = await backend.wait_for("/disconnect", lambda b: b.get("client") == client_u1, "of u1")
        check(dc["user"] == "u1", f"disconnect body {dc}")

        await busy(args, tmp, backend, sim)

        log("backend down: connect 502, rpc 4502; the canary keeps receiving")
        mark = canary.mark()
        await asyncio.to_thread(backend.go_down)  # shutdown() waits for the serve loop: not on this loop
        await expect_refused(port, "/ws?uid=u3", 502, "connect while down")
        _, d = await rpc(u2, 10, "echo", "1")
        check(d.get("event") == "error" and d.get("code") == 4502, f"rpc while down answered {d}")
        await u2.send("into the void")  # counted and logged, the client stays
        await relay.wait_line(r"proxy: .* failed", what="a logged failure")
        await relay.wait_line(r"stats: proxy .*messages failed [1-9]", what="the failed message counted")
        await canary.check(since=mark, what="while the backend was down")
        _, m = await u2.next_data(10)
        check(not u2.closed.is_set(), f"u2: {u2.describe_close()}")

        log("/metrics counts it")
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://{HOST}:{relay.admin_port}/metrics", timeout=10).read().decode())
        series = dict(line.rsplit(" ", 1) for line in text.splitlines()
                      if line.startswith("fanout_relay_proxy_"))
        for name, least in (('fanout_relay_proxy_connects_total{decision="accepted"}', 3),
                            ('fanout_relay_proxy_connects_total{decision="refused"}', 1),
                            ('fanout_relay_proxy_connects_total{decision="failed"}', 2),
                            ('fanout_relay_proxy_rpcs_total{result="answered"}', 2),
                            ('fanout_relay_proxy_rpcs_total{result="failed"}', 2),
                            ('fanout_relay_proxy_event_failures_total{event="message"}', 1)):
            check(float(series.get(name, "-1")) >= least, f"{name} = {series.get(name)}, want >= {least}; {series}")

        log("no cookie or secret in the relay's log")
        text = "\n".join(relay.lines())
        for secret in ("abc123", "s3cr3t"):
            check(secret not in text, f"the relay logged {secret!r}")
        await canary.close()
        await u2.close()
    finally:
        backend.stop()


if __name__ == "__main__":
    run_relay_test("relay_proxy", body)

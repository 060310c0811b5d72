#!/usr/bin/python3
"""The relay's admin surface (docs/security.md): apart from clients, behind a token, bounded, and
free of credentials.

  /usr/bin/python3 tests/integration/test_relay_admin.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Two simulators feed the relay through upstream URLs that carry credentials (user info, apiKey=,
token=): one with 12,000 streams (12,000 topics), one the canary's. The relay serves its admin routes on
its admin listener and, opted in with [admin] public, on the client port, both behind a bearer token.
Checks: 401 without or with a wrong token, 200 with it; the status page's HTML and /healthz open;
no credential in status.json, the status page, /metrics or the log (F5); GET /topics pages (limit,
after, next) cover every topic once, each page under its byte bound, limit over the max is 400 (F4);
four connections pipelining /topics?limit=1000 without reading leave the relay's RSS within a bound
and the canary's seq contiguous and latency low.
"""

import asyncio
import json
import os
import socket
import sys
import tempfile
import time
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_testlib import CANARY_STREAMS, Canary, check_rss, rss_kib  # noqa: E402
from metrics_testlib import http_get  # noqa: E402
from relay_testlib import (HOST, ROUTE, Checks, FeedSim, Relay, check, declare_toml, log,  # noqa: E402
                           run_relay_test, subscribe_msg, write_file)

TOKEN = "adm1n-T0ken-for-the-test-0123456789"
SECRETS = ["hunter2", "SECRETKEY1", "SECRETTOKEN2", TOKEN]
MANY = [("tickers", f"I{i:05d}") for i in range(12000)]
PAGE_BYTES = 262144  # [admin] topics_max_page_bytes default


def get(port, path, token=None, timeout=10):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    import http.client
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def no_secret(what: str, text: str):
    for s in SECRETS:
        check(s not in text, f"{what} shows a credential ({s!r}): ...{text[max(0, text.find(s) - 120):][:240]}...")


def pipeline_without_reading(port: int, n: int, seconds: float):
    """Sends up to n pipelined GET /topics?limit=1000 and never reads; returns (sent bytes, how it ended)."""
    req = (f"GET /topics?limit=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").encode()
    s = socket.create_connection((HOST, port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(0.2)
    sent, deadline = 0, time.monotonic() + seconds
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                return s, sent, "time"
            try:
                s.sendall(req)
                sent += len(req)
            except socket.timeout:
                return s, sent, "server stopped reading"
            except (BrokenPipeError, ConnectionResetError):
                return s, sent, "closed by the server"
        return s, sent, "all sent"
    except Exception:
        s.close()
        raise


async def body(args):
    checks = Checks()
    tmp = tempfile.mkdtemp(prefix="fanout-admin-")
    many = FeedSim(args.sim, rate=0.2, name="sim-many")
    canary_sim = FeedSim(args.sim, rate=50, name="sim-canary")
    token_file = write_file(tmp, "admin-token", TOKEN + "\n")
    conf = write_file(tmp, "relay.toml", f"""
[server]
listen = ["127.0.0.1:0"]
stats_interval_s = 0
[admin]
public = true
{declare_toml(CANARY_STREAMS)}
[[upstream]]
name = "many"
url = "ws://bob:hunter2@127.0.0.1:{many.port}/ws?apiKey=SECRETKEY1&depth=5"
subscribe = ['{subscribe_msg(MANY)}']
[upstream.route]
topic = "{ROUTE}"
[[upstream]]
name = "canary"
url = "ws://127.0.0.1:{canary_sim.port}/ws?token=SECRETTOKEN2"
subscribe = ['{subscribe_msg(CANARY_STREAMS)}']
[upstream.route]
topic = "{ROUTE}"
""")
    relay = Relay(args.relay, ["--config", conf, "--admin-token-file", token_file])
    admin, public = relay.admin_port, relay.port
    check(admin is not None and admin != public, f"admin port {admin}, client port {public}")
    await relay.wait_line(Relay.live_re("many"), what="upstream many live")
    await relay.wait_line(Relay.live_re("canary"), what="upstream canary live")

    async def token_guards():
        for port, where in ((admin, "admin listener"), (public, "client port (admin public)")):
            for path in ("/metrics", "/status.json", "/topics"):
                st, h, _ = await asyncio.to_thread(get, port, path)
                check(st == 401 and "bearer" in h.get("www-authenticate", "").lower(),
                      f"{where}: GET {path} without a token: {st} {h}")
                st, _, _ = await asyncio.to_thread(get, port, path, TOKEN[:-1] + "x")
                check(st == 401, f"{where}: GET {path} with a wrong token: {st}")
                st, _, _ = await asyncio.to_thread(get, port, path, TOKEN)
                check(st == 200, f"{where}: GET {path} with the token: {st}")
            st, _, page = await asyncio.to_thread(get, port, "/")
            check(st == 200 and b"status.json" in page, f"{where}: the status page's HTML is open: {st}")
            st, _, b = await asyncio.to_thread(get, port, "/healthz")
            check(st == 200, f"{where}: /healthz: {st}")
    await checks.arun("a bearer token guards metrics, status.json and /topics on both listeners", token_guards)

    async def no_credentials():
        st, _, raw = await asyncio.to_thread(get, admin, "/status.json", TOKEN)
        doc = json.loads(raw)
        urls = {u["name"]: u["url"] for u in doc["upstreams"]}
        check(urls.get("many") == f"ws://***@127.0.0.1:{many.port}/ws?apiKey=***&depth=5", f"status.json urls {urls}")
        check(urls.get("canary") == f"ws://127.0.0.1:{canary_sim.port}/ws?token=***", f"status.json urls {urls}")
        no_secret("status.json", raw.decode())
        for path in ("/", "/metrics", "/topics?limit=1000"):
            _, _, b = await asyncio.to_thread(get, admin, path, TOKEN)
            no_secret(f"GET {path}", b.decode("utf-8", "replace"))
        # The log: the upstreams' connecting/live lines, and a failure's too.
        await many.acommand("drop")
        await relay.wait_line(Relay.live_re("many"), after=relay.line_count() - 1, what="many live again")
        log_text = "\n".join(relay.lines())
        no_secret("the relay's log", log_text)
        check("ws://***@127.0.0.1" in log_text, "the log shows the redacted URL")
    await checks.arun("no credential in status.json, the page, /metrics or the log (F5)", no_credentials)

    async def topics_paginated():
        deadline = time.monotonic() + 60
        while True:
            _, _, raw = await asyncio.to_thread(get, admin, "/topics?limit=1", TOKEN)
            total = json.loads(raw)["total"]
            if total >= len(MANY) + 1:
                break
            check(time.monotonic() < deadline, f"only {total} topics after 60 s")
            await asyncio.sleep(1.1)  # the snapshot is retaken at most once a second
        st, _, raw = await asyncio.to_thread(get, admin, "/topics", TOKEN)
        d = json.loads(raw)
        check(st == 200 and len(d["topics"]) == 100 and d["next"], f"default page: {len(d['topics'])} topics")
        st, _, raw = await asyncio.to_thread(get, admin, "/topics?limit=1001", TOKEN)
        check(st == 400, f"limit over the maximum: {st} {raw[:100]!r}")
        names, after, pages, biggest = [], None, 0, 0
        while pages < 100:
            path = "/topics?limit=1000" + (f"&after={quote(after, safe='')}" if after else "")
            st, _, raw = await asyncio.to_thread(get, admin, path, TOKEN)
            check(st == 200, f"GET {path}: {st}")
            biggest = max(biggest, len(raw))
            page = json.loads(raw)
            names += [t["name"] for t in page["topics"]]
            pages += 1
            after = page["next"]
            if after is None:
                break
        log(f"    {len(names)} topics in {pages} pages, the largest {biggest} bytes")
        check(len(names) == len(set(names)) == total and names == sorted(names), "pages cover each topic once, in order")
        check(biggest <= PAGE_BYTES + 1024, f"a page of {biggest} bytes")
    await checks.arun("GET /topics: pages by limit/after/next, bounded in entries and bytes (F4)", topics_paginated)

    async def pipelined_topics():
        canary = await Canary.open(public)
        await canary.check(what="before")
        before = rss_kib(relay.pid)
        mark = canary.mark()
        socks = []
        results = await asyncio.gather(*[asyncio.to_thread(pipeline_without_reading, admin, 400, 4) for _ in range(4)])
        for s, sent, how in results:
            socks.append(s)
            log(f"    attacker: {sent} bytes of requests sent, then {how}")
        await asyncio.sleep(2)
        during = rss_kib(relay.pid)
        await canary.check(since=mark, what="while four connections pipeline /topics without reading")
        for s in socks:
            s.close()
        relay.require_alive("after the pipelined /topics")
        log(f"    relay RSS {before} KiB before, {during} KiB with the attackers connected")
        # The whole list (1.5 MB with 12,000 topics) per request, 8 pipelined per connection, was
        # ~50 MB; a page of at most 1000 topics (and 256 KiB) keeps it to ~1 MB per connection.
        check_rss(during - before < 24 * 1024, f"RSS grew {during - before} KiB")
        await canary.check(since=canary.mark(), what="after")
        await canary.close()
    await checks.arun("four connections pipelining /topics without reading: RSS bounded, canary fine (F4)",
                      pipelined_topics)

    rc = await relay.aterminate()
    check(rc == 0, f"relay exited with {rc}")
    checks.finish()


if __name__ == "__main__":
    run_relay_test("relay_admin", body, timeout=150)

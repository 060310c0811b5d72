#!/usr/bin/python3
"""The relay's status page (GET /) renders live data in a real browser: headless Chromium.

  /usr/bin/python3 tests/integration/test_relay_status_page.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

fanout-feed-sim (its own process) -> fanout-relay -> three python clients (two on one topic, one on
another). First GET /status.json is checked as data (the numbers the page shows). Then Debian's
chromium loads the page headless: --dump-dom after a virtual-time budget gives the DOM the page's
script built from its own polling (connections, subscriptions, topics, rates > 0, the upstream
"live", one row per topic with its rate, several updates), and --screenshot must show the chart:
pixels in the series' colours inside an otherwise varied, non-blank image (checked with PIL).
Exit 77 (ctest: skipped) only when /usr/bin/chromium is missing. Every chromium is started in its
own process group and killed by that id when it overruns.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import spawn  # noqa: E402
from metrics_testlib import http_get  # noqa: E402
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, close_all, declare_args, fail,  # noqa: E402
                           log, relay_client, run_relay_test, subscribe_msg, topic_of)

CHROMIUM = "/usr/bin/chromium"
STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT"),
           ("trades", "BTC-USDT"), ("trades", "ETH-USDT")]
WINDOW = (1200, 1000)
# The chart's line colours (status_page.html): from upstreams, published, delivered.
SERIES_RGB = {"from upstreams": (0x7b, 0x61, 0xc9), "published": (0x2f, 0x6f, 0xdb),
              "delivered": (0x1b, 0x9e, 0x77)}


class Dom(HTMLParser):
    """Text by element id, attributes of <body>, and table rows by data-topic / data-upstream."""

    def __init__(self):
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self.rows: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (kind, key) -> [(class, text)]
        self._stack: list[tuple[str | None, tuple | None]] = []  # open elements: (id, row key)
        self._row = None
        self._cell_class = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "tr" and ("data-topic" in a or "data-upstream" in a):
            self._row = ("topic", a["data-topic"]) if "data-topic" in a else ("upstream", a["data-upstream"])
            self.rows[self._row] = []
        if tag == "td" and self._row:
            self._cell_class = a.get("class") or ""
            self.rows[self._row].append((self._cell_class, ""))
        if "id" in a:
            self.by_id.setdefault(a["id"], "")
        self._stack.append((a.get("id"), tag))

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        while self._stack:
            _, t = self._stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for ident, _ in self._stack:
            if ident:
                self.by_id[ident] += data
        if self._row and self.rows[self._row]:
            cls, text = self.rows[self._row][-1]
            self.rows[self._row][-1] = (cls, text + data)


def number(text: str) -> float:
    """The page's numbers: '12', '3.5', '1.2 k', '2.00 M'."""
    t = text.strip()
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}
    if t and t[-1] in scale:
        return float(t[:-1].strip()) * scale[t[-1]]
    try:
        return float(t)
    except ValueError:
        fail(f"not a number on the page: {text!r}")


def run_chromium(url: str, extra, timeout: float = 60) -> str:
    """Headless chromium on `url` with a fresh profile; returns stdout. Killed (its whole process
    group, by id) if it overruns."""
    profile = tempfile.mkdtemp(prefix="fanout-chromium-")
    env = dict(os.environ, HOME=profile, XDG_CONFIG_HOME=profile, XDG_CACHE_HOME=profile)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", *extra, url]
    p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        fail(f"chromium did not finish within {timeout} s")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # helpers it may have left in its group
        except ProcessLookupError:
            pass
        shutil.rmtree(profile, ignore_errors=True)
    check(p.returncode == 0, f"chromium exited with {p.returncode}: {err.decode(errors='replace')[-2000:]}")
    return out.decode("utf-8", "replace")


async def body(args):
    if not os.access(CHROMIUM, os.X_OK):
        print(f"SKIP: {CHROMIUM} is not installed (scripts/install-deps installs chromium)", flush=True)
        sys.exit(77)
    checks = Checks()
    sim = FeedSim(args.sim, rate=20)
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 0])
    await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    clients = [
        await relay_client(relay.port, ["tickers:BTC-USDT"], "client-A", via_url=True),
        await relay_client(relay.port, ["tickers:BTC-USDT"], "client-B"),
        await relay_client(relay.port, ["trades:ETH-USDT"], "client-C"),
    ]
    for c in clients:
        await c.count_each(5)
    base = f"http://127.0.0.1:{relay.admin_port}"

    async def status_json():
        # The history gets a point a second; wait for a few with the clients in them.
        deadline = time.monotonic() + 30
        while True:
            status, headers, raw = await asyncio.to_thread(http_get, relay.admin_port, "/status.json")
            check(status == 200, f"GET /status.json: {status}")
            check(headers.get("content-type", "").startswith("application/json"), f"content type {headers}")
            s = json.loads(raw)
            if len(s["history"]) >= 3 and s["history"][-1][5] == 3 and s["connections"] == 3:
                break
            if time.monotonic() > deadline:
                fail(f"status.json did not reach 3 history points with 3 connections: {raw[:1500]!r}")
            await asyncio.sleep(0.3)
        check(s["subscriptions"] == 3, f"subscriptions {s['subscriptions']}")
        check(s["topics"] == 2, f"topics with subscribers {s['topics']}")
        check(s["rates"]["routed_per_s"] > 0 and s["rates"]["published_per_s"] > 0
              and s["rates"]["delivered_per_s"] > 0, f"rates {s['rates']}")
        check([u["name"] for u in s["upstreams"]] == ["upstream"] and s["upstreams"][0]["state"] == "live",
              f"upstreams {s['upstreams']}")
        topics = {t["topic"]: t for t in s["message_topics"]}
        check(set(topics) == {topic_of(x) for x in STREAMS}, f"topics {sorted(topics)}")
        check(s["message_topics_tracked"] == len(STREAMS), f"message_topics_tracked {s['message_topics_tracked']}")
        check(all(t["per_s"] > 0 and t["messages"] > 0 for t in topics.values()), f"topic rates {topics}")
        log(f"    {len(s['history'])} points; rates {s['rates']}")
    await checks.arun("GET /status.json: connections, topics, rates, upstream", status_json)

    async def page_served():
        status, headers, raw = await asyncio.to_thread(http_get, relay.admin_port, "/")
        check(status == 200 and headers.get("content-type", "").startswith("text/html"), f"GET /: {status} {headers}")
        text = raw.decode()
        check("<canvas" in text and "status.json" in text, "the page has its chart and polls status.json")
        check("<script src" not in text and "http://" not in text.replace(base, "")
              and "https://" not in text, "the page loads nothing from elsewhere")
    await checks.arun("GET /: self-contained HTML", page_served)

    async def dom():
        html = await asyncio.to_thread(run_chromium, base + "/", ["--virtual-time-budget=6000", "--dump-dom"])
        d = Dom()
        d.feed(html)
        log(f"    body {d.body}; state {d.by_id.get('state')!r}")
        check(int(d.body.get("data-updates", "0")) >= 2,
              f"the page should have polled and redrawn several times: {d.body}")
        check(d.by_id.get("state", "").startswith("live"), f"state line {d.by_id.get('state')!r}")
        check(number(d.by_id["connections"]) == 3, f"connections on the page: {d.by_id['connections']!r}")
        check(number(d.by_id["subscriptions"]) == 3, f"subscriptions on the page: {d.by_id['subscriptions']!r}")
        check(number(d.by_id["topics"]) == 2, f"topics on the page: {d.by_id['topics']!r}")
        for ident in ("routed-rate", "published-rate", "delivered-rate"):
            check(number(d.by_id[ident]) > 0, f"{ident} on the page: {d.by_id[ident]!r}")
        check(number(d.by_id["dropped"]) == 0, f"dropped on the page: {d.by_id['dropped']!r}")
        check(d.by_id.get("topics-tracked", "").strip() == f"{len(STREAMS)} tracked",
              f"topics tracked on the page: {d.by_id.get('topics-tracked')!r}")
        up = d.rows.get(("upstream", "upstream"))
        check(up is not None, f"no upstream row; rows {sorted(d.rows)}")
        check(any("st-live" in cls and text == "live" for cls, text in up), f"upstream row {up}")
        for t in (topic_of(x) for x in STREAMS):
            row = d.rows.get(("topic", t))
            check(row is not None, f"no row for topic {t}; rows {sorted(d.rows)}")
            rate = [text for cls, text in row if "rate" in cls.split()]
            check(rate and number(rate[0]) > 0, f"topic {t}: rate {rate} on the page")
    await checks.arun("chromium --dump-dom: the page's script rendered live numbers", dom)

    async def screenshot():
        from PIL import Image  # python3-pil (with python3-matplotlib; in scripts/install-deps)
        with tempfile.TemporaryDirectory(prefix="fanout-shot-") as d:
            png = os.path.join(d, "status.png")
            await asyncio.to_thread(run_chromium, base + "/", ["--virtual-time-budget=6000", f"--screenshot={png}"])
            check(os.path.exists(png), "no screenshot written")
            img = Image.open(png).convert("RGB")
            check(img.size == WINDOW, f"screenshot size {img.size}, expected {WINDOW}")
            pixels = list(img.getdata())
        colours = len(set(pixels))
        background = max(set(pixels[:: 97]), key=pixels[:: 97].count)
        non_bg = sum(1 for p in pixels if p != background)
        log(f"    {colours} colours, {non_bg} pixels not background {background}")
        check(colours > 50 and non_bg > 0.02 * len(pixels), "the screenshot looks blank")

        def near(p, rgb):
            return all(abs(a - b) <= 12 for a, b in zip(p, rgb))
        for name, rgb in SERIES_RGB.items():
            n = sum(1 for p in pixels if near(p, rgb))
            log(f"    {name}: {n} pixels of its colour")
            # The legend swatch alone is 18x3 = 54 pixels: a drawn line over the chart is far more.
            check(n > 300, f"the chart shows no '{name}' line ({n} pixels of its colour)")
    await checks.arun("chromium --screenshot: not blank, the chart's lines are drawn", screenshot)

    await close_all(*clients)
    rc = await relay.aterminate()
    check(rc == 0, f"relay exited with {rc}")
    checks.finish()


if __name__ == "__main__":
    run_relay_test("relay_status_page", body, timeout=150)

#!/usr/bin/python3
"""examples/processing (fanout-processing): raw tickers and derived OHLC/VWAP bars, side by side.

  /usr/bin/python3 tests/integration/test_processing.py --server build/tests/integration/fanout-test-server \
      --processing build/examples/processing/fanout-processing

Checks: a client subscribed to tickers:BTC-USDT and bars:BTC-USDT gets both; every bar whose whole
interval it saw is right (open/high/low/close/ticks/vwap recomputed from the ticks it received,
bar boundaries at multiples of the interval); SIGTERM: exit 0 with "0 errors".
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (Checks, WsClient, base_parser, check, fail, kill_child, log,  # noqa: E402
                           run_test, spawn)

INTERVAL_MS = 200


async def body(args):
    checks = Checks()
    out = tempfile.NamedTemporaryFile(prefix="fanout-processing-", suffix=".log", delete=False)
    proc = spawn([args.processing, "--port", "0", "--interval-ms", str(INTERVAL_MS), "--rate", "50"],
                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        await run(checks, proc, out.name)
    finally:
        kill_child(proc)
        os.unlink(out.name)
    checks.finish()


def text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


async def run(checks: Checks, proc, path: str):
    deadline = time.monotonic() + 20
    while not (m := re.search(r"serving ws://127\.0\.0\.1:(\d+)/ws", text(path))):
        if proc.poll() is not None or time.monotonic() > deadline:
            fail(f"fanout-processing did not start: {text(path)!r}")
        await asyncio.sleep(0.05)
    port = int(m.group(1))
    client = await WsClient.open(port, "/ws", name="client")
    await client.subscribe("tickers:BTC-USDT", "bars:BTC-USDT")
    ticks, bars = [], []

    async def receive():
        while len(bars) < 4:
            _, msg = await client.next_data(20)
            d = json.loads(msg)
            item = d["data"][0]
            if d["arg"]["channel"] == "tickers":
                ticks.append((item["ts"] // 1000, float(item["last"])))
            else:
                check(d["arg"] == {"channel": "bars", "instId": "BTC-USDT"}, f"unexpected message {msg[:200]}")
                bars.append(item)

    def bars_right():
        first_tick_ms = ticks[0][0]
        checked = 0
        for b in bars:
            check(b["start"] % INTERVAL_MS == 0 and b["end"] - b["start"] == INTERVAL_MS, f"bar bounds {b}")
            if b["start"] <= first_tick_ms:
                continue  # began before the client subscribed
            px = [p for t, p in ticks if b["start"] <= t < b["end"]]
            vwap = 0.0
            for p in px:
                vwap += p
            want = (px[0], max(px), min(px), px[-1], vwap / len(px), len(px))
            got = tuple(float(b[k]) for k in ("open", "high", "low", "close", "vwap")) + (b["ticks"],)
            check(got == want, f"bar {b}: expected open/high/low/close/vwap/ticks {want}")
            checked += 1
        check(checked >= 2, f"only {checked} complete bars to check")
        log(f"    {checked} bars checked against {len(ticks)} ticks")

    async def sigterm():
        await client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            fail("no exit within 20 s of SIGTERM")
        check(rc == 0, f"exit {rc}: {text(path)[-500:]}")
        check(re.search(r"processed [1-9]\d* messages, published \d+ \(raw \+ bars\), 0 errors", text(path)),
              f"no final line with 0 errors: {text(path)[-500:]!r}")

    await checks.arun("raw tickers and derived bars arrive", receive)
    checks.run("every fully seen bar matches its ticks", bars_right)
    await checks.arun("SIGTERM: exit 0, no handler errors", sigterm)


if __name__ == "__main__":
    p = base_parser("processing")
    p.add_argument("--processing", required=True, help="path to fanout-processing")
    p.set_defaults(timeout=90)
    run_test("processing", body, p)

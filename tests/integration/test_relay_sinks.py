#!/usr/bin/python3
"""fanout-relay with a processor (stage "bars"), two journal sinks and a PostgreSQL sink, end to end.

  /usr/bin/python3 tests/integration/test_relay_sinks.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

fanout-feed-sim (its own process) -> fanout-relay ([processor] stage = "bars", 2 workers, overflow
= block; [[sink]] journal of everything, rotated at 16 KiB; [[sink]] journal of bars:* only;
[[sink]] postgres of tickers:* into a PostgreSQL server of the test's own) -> a python client
subscribed to tickers:BTC-USDT and bars:BTC-USDT. After SIGTERM:
  * the relay logs, per sink, offered == written with nothing dropped or failed, and the journal
    files (PATH, PATH.1, ...) hold exactly `written` lines, valid JSON, rotated (several files, none
    past the limit);
  * per topic, seqs in the journal increase (order kept through the worker pool);
  * every message the client received is in the journal byte for byte, in the same order;
  * every bar is right: open/high/low/close/ticks/vwap recomputed from the journal's ticks of its
    instrument and interval;
  * the bars-only journal holds exactly the bar lines of the full journal;
  * the PostgreSQL table holds exactly the journal's tickers:* messages (topic, seq, payload), in order;
  * sinks get the hub's seq: every message an envelope-mode client received ({"topic","seq","data"})
    is in the journal under the same topic and seq, with the processor (raw and derived topics)
    and, in a second relay without it, straight from the router;
  * bad [processor] / [[sink]] settings make `--check` exit 2 naming the file and the key.
"""

import asyncio
import glob
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (Checks, FeedSim, Relay, WsClient, check, fail, log,  # noqa: E402
                           run_command, run_relay_test, subscribe_msg, write_file)
from sink_testlib import PgServer  # noqa: E402

STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT"), ("trades", "BTC-USDT")]
MAX_FILE = 16384
BAR_MS = 200


def read_journal(path: str) -> list[dict]:
    """All lines of PATH and its rotated files, oldest first."""
    rotated = sorted(glob.glob(path + ".*"), key=lambda p: -int(p.rsplit(".", 1)[1]))
    out = []
    for p in rotated + [path]:
        size = os.path.getsize(p)
        check(size <= MAX_FILE, f"{p}: {size} bytes, over max_file_bytes {MAX_FILE}")
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    fail(f"{p}:{n}: not JSON ({e}): {line[:200]!r}")
    return out, len(rotated) + 1


async def body(args):
    checks = Checks()
    pg = PgServer()
    try:
        with tempfile.TemporaryDirectory(prefix="fanout-relay-sinks-") as tmp:
            await run(args, checks, tmp, pg)
            await run_plain(args, checks, tmp)
            await bad_config(args, checks, tmp)
    finally:
        pg.stop()
    checks.finish()


async def envelopes(client: WsClient, want: dict) -> list:
    """(topic, seq, data) of envelope-mode messages until each topic in want = {topic: n} has n."""
    got, count = [], {t: 0 for t in want}
    while any(count[t] < n for t, n in want.items()):
        _, m = await client.next_data(20)
        e = json.loads(m)
        check(e.get("topic") in want and isinstance(e.get("seq"), int), f"not an envelope we asked for: {m[:200]}")
        got.append((e["topic"], e["seq"], e["data"]))
        count[e["topic"]] += 1
    return got


def same_seqs(journal: list, got: list):
    """Every envelope a client got is journaled under its topic and the seq it carried."""
    by_seq = {}
    for e in journal:
        check((e["topic"], e.get("seq")) not in by_seq, f"{e['topic']} seq {e.get('seq')} journaled twice")
        by_seq[(e["topic"], e.get("seq"))] = e["payload"]
    for topic, seq, data in got:
        payload = by_seq.get((topic, seq))
        check(payload is not None, f"{topic} seq {seq}: the client got it, the journal has no such seq")
        check(json.loads(payload) == data, f"{topic} seq {seq}: the journal has another message under that seq")
    log(f"    {len(got)} envelopes found in the journal under their seq")


async def run_plain(args, checks: Checks, tmp: str):
    """No processor: the router publishes straight to the hub, and the journal still gets its seq."""
    sim = FeedSim(args.sim, rate=50)
    journal = os.path.join(tmp, "plain.jsonl")
    config = write_file(tmp, "plain.toml", f"""
[server]
listen = ["127.0.0.1:0"]

[topics]                 # the client subscribes at once, before the upstream's first message
declare = ["tickers:BTC-USDT", "trades:BTC-USDT"]

[[upstream]]
name = "sim"
urls = ["{sim.url}"]
subscribe = ['{subscribe_msg(STREAMS)}']
[upstream.route]
topic = "{{arg.channel}}:{{arg.instId}}"
seq = "data.0.seq"

[[sink]]
type = "journal"
path = "{journal}"
max_file_bytes = {MAX_FILE}
max_files = 100000
""")
    relay = Relay(args.relay, ["--config", config], name="relay-plain")
    client = await WsClient.open(relay.port, "/ws?envelope=1", name="envelope-plain")
    await client.subscribe("tickers:BTC-USDT", "trades:BTC-USDT")
    got = []

    async def receive():
        got.extend(await envelopes(client, {"tickers:BTC-USDT": 20, "trades:BTC-USDT": 20}))

    await checks.arun("no processor: an envelope client receives tickers and trades", receive)
    rc = await relay.aterminate()
    check(rc == 0, f"relay exit {rc}")
    await client.close()
    sim.quit()
    lines, _ = read_journal(journal)
    checks.run("no processor: the journal's seq is the seq clients got", lambda: same_seqs(lines, got))


async def bad_config(args, checks: Checks, tmp: str):
    cases = [("[processor]\noverflow = \"wait\"\n", "processor.overflow"),
             ("[processor]\nworkers = 0\n", "processor.workers"),
             ("[[sink]]\ntype = \"kafka\"\n", "sink type 'kafka'"),
             ("[[sink]]\ntype = \"journal\"\npath = \"\"\n", "empty path"),
             ("[[sink]]\ntype = \"journal\"\nmax_queued = 0\n", "max_queued"),
             ("[[sink]]\ntype = \"postgres\"\noverflow = \"spill\"\n", "overflow 'spill'"),
             ("[[sink]]\ntype = \"postgres\"\nspill_to = \"nowhere\"\n", "spill_to 'nowhere'")]

    async def each():
        for i, (text, key) in enumerate(cases):
            path = write_file(tmp, f"bad{i}.toml", text)
            rc, out, err = run_command([args.relay, "--check", "--config", path])
            check(rc == 2 and path in err and key in err,
                  f"{text!r}: exit {rc}, expected 2 naming {path} and {key!r}; stderr {err!r}")
            log(f"    {err.strip()}")

    await checks.arun("bad [processor] and [[sink]] settings: exit 2 with file and key", each)


async def run(args, checks: Checks, tmp: str, pg: PgServer):
    sim = FeedSim(args.sim, rate=50)
    journal = os.path.join(tmp, "all.jsonl")
    bars_journal = os.path.join(tmp, "bars.jsonl")
    config = write_file(tmp, "relay.toml", f"""
[server]
listen = ["127.0.0.1:0"]
stats_interval_s = 1

[[upstream]]
name = "sim"
urls = ["{sim.url}"]
subscribe = ['{subscribe_msg(STREAMS)}']
[upstream.route]
topic = "{{arg.channel}}:{{arg.instId}}"
seq = "data.0.seq"

[topics]                 # the client subscribes at once: before the upstream's and the first bar's message
declare = ["tickers:BTC-USDT", "bars:BTC-USDT"]

[processor]
enabled = true
stage = "bars"
workers = 2
overflow = "block"
bar_interval_ms = {BAR_MS}

[[sink]]
type = "journal"
name = "all"
path = "{journal}"
max_file_bytes = {MAX_FILE}
max_files = 100000

[[sink]]
type = "journal"
name = "bars"
topics = ["bars:*"]
path = "{bars_journal}"

[[sink]]
type = "postgres"
name = "db"
topics = ["tickers:*"]
conninfo = "{pg.conninfo}"
table = "ticks"
""")
    relay = Relay(args.relay, ["--config", config])
    client = await WsClient.open(relay.port, "/ws", name="client")
    await client.subscribe("tickers:BTC-USDT", "bars:BTC-USDT")
    received = {"tickers:BTC-USDT": [], "bars:BTC-USDT": []}
    env_client = await WsClient.open(relay.port, "/ws?envelope=1", name="envelope-client")
    await env_client.subscribe("tickers:BTC-USDT", "bars:BTC-USDT")
    enveloped = []

    async def receive():
        while len(received["bars:BTC-USDT"]) < 4 or len(received["tickers:BTC-USDT"]) < 40:
            _, m = await client.next_data(20)
            d = json.loads(m)
            topic = f"{d['arg']['channel']}:{d['arg']['instId']}"
            check(topic in received, f"unexpected topic {topic}: {m[:200]}")
            received[topic].append(m)
        enveloped.extend(await envelopes(env_client, {"tickers:BTC-USDT": 20, "bars:BTC-USDT": 2}))
        await relay.wait_line(r"stats: processor queued \d+ lag \d+ ms processed [1-9]", what="a processor stats line")
        await relay.wait_line(r"stats: sink all queued \d+ lag \d+ ms written [1-9]", what="a sink stats line")

    await checks.arun("client receives raw tickers and derived bars", receive)
    rc = await relay.aterminate()
    check(rc == 0, f"relay exit {rc}")
    await client.close()
    await env_client.close()
    sim.quit()

    def sink_line(name: str) -> dict:
        found = relay.find(rf"sink {name}: offered (\d+) written (\d+) dropped (\d+) failed (\d+)")
        check(found is not None, f"no final line for sink {name}")
        o, w, d, f = map(int, re.search(r"offered (\d+) written (\d+) dropped (\d+) failed (\d+)", found[1]).groups())
        return {"offered": o, "written": w, "dropped": d, "failed": f}

    lines, files = read_journal(journal)
    topic_of = lambda e: e["topic"]  # noqa: E731

    def complete():
        st = sink_line("all")
        log(f"    sink all: {st}, {len(lines)} lines in {files} files")
        check(st["offered"] == st["written"] and st["dropped"] == 0 and st["failed"] == 0, f"{st}")
        check(len(lines) == st["written"], f"{len(lines)} journal lines, {st['written']} written")
        check(files >= 2, f"no rotation: {files} file(s)")

    def ordered():
        last = {}
        for e in lines:
            if e["topic"].startswith("bars:"):
                continue
            check(e.get("seq", 0) > last.get(e["topic"], -1), f"{e['topic']}: seq {e.get('seq')} after {last.get(e['topic'])}")
            last[e["topic"]] = e["seq"]
        check(set(last) == {f"{c}:{i}" for c, i in STREAMS}, f"journal topics {sorted(last)}")

    def same_bytes():
        for topic, msgs in received.items():
            journaled = [e["payload"] for e in lines if e["topic"] == topic]
            check(msgs, f"{topic}: nothing received")
            try:
                start = journaled.index(msgs[0])
            except ValueError:
                fail(f"{topic}: first received message not in the journal: {msgs[0][:200]}")
            check(journaled[start:start + len(msgs)] == msgs,
                  f"{topic}: received messages differ from the journal's from index {start}")

    def bars_right():
        ticks = {}
        for e in lines:
            if e["topic"].startswith("tickers:"):
                item = json.loads(e["payload"])["data"][0]
                ticks.setdefault(item["instId"], []).append((item["ts"] // 1000, float(item["last"])))
        bars = [json.loads(e["payload"])["data"][0] for e in lines if e["topic"].startswith("bars:")]
        check(len(bars) >= 4, f"only {len(bars)} bars journaled")
        for b in bars:
            px = [p for t, p in ticks[b["instId"]] if b["start"] <= t < b["end"]]
            check(b["end"] - b["start"] == BAR_MS, f"bar length {b}")
            check(len(px) == b["ticks"], f"bar {b}: {len(px)} ticks in the journal")
            vwap = 0.0
            for p in px:
                vwap += p
            want = (px[0], max(px), min(px), px[-1], vwap / len(px))
            got = tuple(float(b[k]) for k in ("open", "high", "low", "close", "vwap"))
            check(got == want, f"bar {b}: expected open/high/low/close/vwap {want}")
        log(f"    {len(bars)} bars checked against their ticks")

    def bars_only():
        st = sink_line("bars")
        only, _ = read_journal(bars_journal)
        check(st["written"] == len(only) and st["dropped"] == 0, f"bars sink {st}, {len(only)} lines")
        check([e["payload"] for e in only] == [e["payload"] for e in lines if e["topic"].startswith("bars:")],
              "the bars-only journal differs from the bar lines of the full journal")

    checks.run("journal complete: written == offered == lines, rotated", complete)
    checks.run("journal keeps per-topic order", ordered)
    checks.run("what the client got is journaled byte for byte", same_bytes)
    checks.run("bars recomputed from the journal's ticks", bars_right)
    checks.run("with the processor: the journal's seq is the seq clients got (raw and bars)",
               lambda: same_seqs(lines, enveloped))
    def postgres():
        st = sink_line("db")
        got = pg.query("SELECT topic, seq, payload FROM ticks ORDER BY id")
        want = [(e["topic"], e["seq"], e["payload"]) for e in lines if e["topic"].startswith("tickers:")]
        log(f"    sink db: {st}, {len(got)} rows")
        check(st["offered"] == st["written"] == len(got) and st["dropped"] == 0 and st["failed"] == 0,
              f"sink db {st}, {len(got)} rows")
        check([tuple(r) for r in got] == want, f"rows differ from the journal's tickers ({len(got)} vs {len(want)})")

    checks.run("the bars:* journal has only and all bars", bars_only)
    checks.run("PostgreSQL holds the journal's tickers:* messages exactly", postgres)


if __name__ == "__main__":
    run_relay_test("relay_sinks", body)

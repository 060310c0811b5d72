#!/usr/bin/python3
"""Fossil deltas and drop notices, end to end: fanout-feed-sim -> fanout-relay -> clients, the deltas
decoded by an independent decoder (the npm `fossil-delta` package under node).

  /usr/bin/python3 tests/integration/test_relay_delta.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Needs node and tests/integration/node/node_modules (`npm ci` there; scripts/install-deps does it):
skipped (exit 77) with a message when node or the package is missing.

Checks: a client subscribed with "delta":"fossil" gets deltas, and every message it reconstructs with
the npm decoder equals, byte for byte, the message a plain client of the same relay got for the same
seq; its first message per topic is full. A client that does not read (its policy drops frames) and
asked for "drop_notices":true gets {"event":"dropped"} notices counting them, and after each gap a full
message: everything it received still decodes. /metrics counts deltas and notices.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import OP_CLOSE, RawWS, WsClient, is_event  # noqa: E402
from metrics_testlib import ascrape  # noqa: E402
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, close_all, declare_args, fail, log,  # noqa: E402
                           parse_sim_message, relay_client, run_relay_test, subscribe_msg, topic_of)

STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]
PER_TOPIC = 60
NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


def node_available() -> str | None:
    """Why the independent decoder cannot run here, or None."""
    if not shutil.which("node"):
        return "node is not installed (apt-get install nodejs)"
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "fossil-delta")):
        return f"the npm package fossil-delta is not installed (cd {NODE_DIR} && npm ci)"
    return None


def decode_with_node(texts: list[str], who: str) -> list[dict]:
    r = subprocess.run(["node", os.path.join(NODE_DIR, "apply_deltas.js")], input=json.dumps(texts),
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"{who}: the npm decoder refused the stream: {r.stderr.strip()}")
    return json.loads(r.stdout)


async def delta_client(port: int, name: str, extra=None) -> WsClient:
    c = await WsClient.open(port, "/ws", name=name)
    await c.send_json({"op": "subscribe", "args": TOPICS, "delta": "fossil", **(extra or {})})
    want = set(TOPICS)
    while want:
        _, d = await c.next_event(10, "subscribe acks")
        check(d.get("event") == "subscribe" and d.get("arg") in want, f"{name}: expected an ack, got {d}")
        want.discard(d["arg"])
    return c


async def body(args):
    checks = Checks()
    sim = FeedSim(args.sim, rate=100)
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 0,
                               "--policy", "drop_oldest", "--max-queue-bytes", 16384])
    await relay.wait_line(Relay.live_re("upstream"), what="upstream live")

    ref = await relay_client(relay.port, TOPICS, "plain-client")
    delta = await delta_client(relay.port, "delta-client")
    got: list[str] = []
    per_topic = {t: 0 for t in TOPICS}
    deadline = time.monotonic() + 30
    while min(per_topic.values()) < PER_TOPIC:
        if time.monotonic() > deadline:
            fail(f"delta-client: not {PER_TOPIC} messages per topic within 30 s: {per_topic}")
        _, m = await delta.next_data(10)
        got.append(m)
        per_topic[json.loads(m)["topic"]] += 1

    async def decoded_byte_exact():
        decoded = decode_with_node(got, "delta-client")
        check(len(decoded) == len(got), "every data message decoded")
        deltas = sum(d["delta"] for d in decoded)
        check(deltas > len(decoded) // 2, f"most messages are deltas on a ticker stream: {deltas} of {len(decoded)}")
        first = {}
        for d in decoded:
            first.setdefault(d["topic"], d)
        for t, d in first.items():
            check(not d["delta"], f"{t}: the first message (seq {d['seq']}) is full")
        # The plain client must have got as far; compare by the simulator's own seq in the payload.
        last = {}
        for d in decoded:
            last[d["topic"]] = max(last.get(d["topic"], 0), parse_sim_message(d["payload"], "decoded")[1])
        for t, s in last.items():
            await ref.seq_at_least(t, s)
        n = 0
        for d in decoded:
            topic, sim_seq, _ = parse_sim_message(d["payload"], "decoded")
            check(topic == d["topic"], f"seq {d['seq']}: payload of {topic} in an envelope of {d['topic']}")
            plain = ref.texts(topic).get(sim_seq)
            check(plain is not None, f"{topic} sim seq {sim_seq}: the plain client has no such message")
            check(d["payload"] == plain, f"{topic} relay seq {d['seq']}: reconstructed payload differs from the "
                                         f"plain client's: {d['payload'][:120]!r} vs {plain[:120]!r}")
            n += 1
        wire = sum(len(m.encode()) for m in got)
        full = sum(len(ref.texts(json.loads(m)["topic"])[parse_sim_message(d["payload"], "")[1]].encode())
                   for m, d in zip(got, decoded))
        log(f"    {n} messages byte-exact, {deltas} deltas; {wire} bytes on the wire (envelopes) "
            f"for {full} bytes of payloads")
    await checks.arun("delta subscription: the npm decoder reconstructs every message byte for byte",
                      decoded_byte_exact)

    async def metrics_count_deltas():
        m = await ascrape(relay.admin_port)
        check(m.value("fanout_deltas_computed_total") > 0, "deltas computed counted")
        check(m.value("fanout_deltas_written_total") > 0, "deltas written counted")
    await checks.arun("/metrics counts deltas computed (once per publish) and written", metrics_count_deltas)

    async def bad_delta_kind():
        c = await WsClient.open(relay.port, "/ws", name="bad-kind")
        await c.send_json({"op": "subscribe", "args": TOPICS[:1], "delta": "xdelta"})
        _, d = await c.next_event(10, "error")
        check(d.get("event") == "error" and d.get("code") == 4002, f"unknown delta kind: 4002 expected, got {d}")
        await c.close()
    await checks.arun('"delta":"xdelta" is refused with 4002', bad_delta_kind)

    # A client that does not read: the relay's policy (drop_oldest, 16 KiB) drops its frames.
    await delta.close()
    path = "/ws"
    slow = await asyncio.to_thread(RawWS, relay.port, path, 10, 4096)
    await asyncio.to_thread(slow.send_text, json.dumps(
        {"op": "subscribe", "args": TOPICS, "delta": "fossil", "drop_notices": True}))
    await sim.acommand("rate 2000")

    async def drops_happen():
        deadline = time.monotonic() + 40
        while True:
            ref.drain()
            m = await ascrape(relay.admin_port)
            if m.value("fanout_dropped_total", policy="drop_oldest") > 0 and m.value("fanout_drop_notices_total") > 0:
                return
            if time.monotonic() > deadline:
                fail("no drop (and drop notice) for a client that does not read within 40 s")
            await asyncio.sleep(0.2)
    await checks.arun("a client that does not read: frames dropped, notices queued", drops_happen)
    await sim.acommand("silent on")  # the backlog is what the sockets and the queue hold: read it all

    async def after_gaps_full_messages():
        texts, notices = [], []
        quiet_since = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ref.drain()
            try:
                op, payload = await asyncio.to_thread(slow.recv_message, 0.5)
            except (TimeoutError, OSError):  # a quiet socket
                quiet_since = quiet_since or time.monotonic()
                if texts and notices and time.monotonic() - quiet_since > 1.0:
                    break
                continue
            quiet_since = None
            check(op != OP_CLOSE, f"slow client closed: {payload!r}")
            text = payload.decode() if isinstance(payload, bytes) else payload
            if is_event(text):
                e = json.loads(text)
                if e.get("event") == "dropped":
                    notices.append(e)
                continue
            texts.append(text)
        check(time.monotonic() < deadline, "the slow client's backlog drained within 60 s")
        check(notices, "drop notices received")
        for e in notices:
            check(e.get("arg") in TOPICS and isinstance(e.get("count"), int) and e["count"] > 0,
                  f"a drop notice names a topic and a positive count: {e}")
        decoded = decode_with_node(texts, "slow-client")  # fails on a delta whose base was dropped
        gaps = 0
        last = {}
        for d in decoded:
            prev = last.get(d["topic"])
            if prev is not None and d["seq"] != prev + 1:
                gaps += 1
                check(not d["delta"], f"{d['topic']}: after the gap {prev} -> {d['seq']} a full message")
            last[d["topic"]] = d["seq"]
        check(gaps > 0, "the slow client saw seq gaps (frames were dropped)")
        dropped = sum(e["count"] for e in notices)
        log(f"    {len(decoded)} messages decoded, {gaps} gaps each followed by a full message; "
            f"{len(notices)} notices counting {dropped} drops")
    await checks.arun("after drops: full messages after every gap, notices count the drops", after_gaps_full_messages)

    await asyncio.to_thread(slow.close_socket)
    await close_all(ref)
    check(relay.terminate() == 0, "relay exits 0 on SIGTERM")
    checks.finish()


if __name__ == "__main__":
    why = node_available()
    if why:
        print(f"SKIP: {why}")
        sys.exit(77)
    run_relay_test("relay_delta", body, timeout=150)

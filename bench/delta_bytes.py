#!/usr/bin/python3
"""Bytes on the wire with Fossil deltas on the simulator's ticker stream (docs/benchmarks.md,
"Issue 15: deltas").

  flock /tmp/bench.lock /usr/bin/python3 bench/delta_bytes.py --server build/rel/tests/integration/fanout-test-server \
      --relay build/rel/examples/relay/fanout-relay --sim build/rel/tools/feed-sim/fanout-feed-sim [--size 256]

fanout-feed-sim -> fanout-relay -> three clients of the same topics at once: verbatim, envelope
(?envelope=1) and "delta":"fossil". Counts each one's WebSocket payload bytes over the same relay seqs
(the first N messages every client has), and the relay's deltas computed and written (/metrics).
"""
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from fanout_testlib import WsClient  # noqa: E402
from metrics_testlib import ascrape  # noqa: E402
from relay_testlib import (ROUTE, FeedSim, Relay, declare_args, log, relay_parser, run_test,  # noqa: E402
                           subscribe_msg, topic_of)

INSTRUMENTS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT"]
STREAMS = [("tickers", i) for i in INSTRUMENTS]
TOPICS = [topic_of(s) for s in STREAMS]
PER_TOPIC = 500


async def collect(c: WsClient, n_total: int) -> list[str]:
    out = []
    while len(out) < n_total:
        _, m = await c.next_data(20)
        out.append(m)
    return out


async def body(args):
    sim = FeedSim(args.sim, rate=args.rate, args=["--size", args.size])
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 0])
    await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    verbatim = await WsClient.open(relay.port, "/ws", name="verbatim")
    envelope = await WsClient.open(relay.port, "/ws?envelope=1", name="envelope")
    delta = await WsClient.open(relay.port, "/ws", name="delta")
    for c, extra in ((verbatim, {}), (envelope, {}), (delta, {"delta": "fossil"})):
        await c.send_json({"op": "subscribe", "args": TOPICS, **extra})
        for _ in TOPICS:
            await c.next_event(10, "ack")
    n = PER_TOPIC * len(TOPICS)
    got = await asyncio.gather(collect(verbatim, n + 200), collect(envelope, n + 200), collect(delta, n + 200))
    m = await ascrape(relay.admin_port)
    # Compare over the same relay seqs: what the envelope and delta clients both have.
    env_by = {(j["topic"], j["seq"]): t for t in got[1] for j in [json.loads(t)]}
    delta_by = {(j["topic"], j["seq"]): (t, j.get("delta", False)) for t in got[2] for j in [json.loads(t)]}
    common = sorted(set(env_by) & set(delta_by))[:n]
    env_bytes = sum(len(env_by[k].encode()) for k in common)
    delta_bytes = sum(len(delta_by[k][0].encode()) for k in common)
    deltas = sum(delta_by[k][1] for k in common)
    verbatim_bytes = sum(len(t.encode()) for t in got[0][:len(common)])
    ws_header = lambda b: 2 if b < 126 else 4  # noqa: E731 - server frames are unmasked
    frames = lambda texts: sum(ws_header(len(t.encode())) for t in texts)  # noqa: E731
    log(f"RESULT size={args.size} rate={args.rate}/s x {len(TOPICS)} topics, {len(common)} messages:")
    log(f"RESULT   verbatim  {verbatim_bytes + frames(got[0][:len(common)]):>9} bytes "
        f"({verbatim_bytes / len(common):.1f} payload bytes/msg)")
    log(f"RESULT   envelope  {env_bytes + frames([env_by[k] for k in common]):>9} bytes "
        f"({env_bytes / len(common):.1f}/msg)")
    log(f"RESULT   delta     {delta_bytes + frames([delta_by[k][0] for k in common]):>9} bytes "
        f"({delta_bytes / len(common):.1f}/msg), {deltas} deltas, ratio to envelope {delta_bytes / env_bytes:.3f}, "
        f"to verbatim {delta_bytes / verbatim_bytes:.3f}")
    log(f"RESULT   relay: deltas computed {int(m.value('fanout_deltas_computed_total'))}, "
        f"written {int(m.value('fanout_deltas_written_total'))}, published {int(m.value('fanout_published_total'))}")
    await asyncio.gather(verbatim.close(), envelope.close(), delta.close(), return_exceptions=True)
    relay.terminate()


if __name__ == "__main__":
    p = relay_parser("delta_bytes")
    p.add_argument("--size", type=int, default=256, help="the simulator's message size (its --size)")
    p.add_argument("--rate", type=float, default=100, help="messages/s per stream")
    p.set_defaults(timeout=120)
    run_test("delta_bytes", body, p)

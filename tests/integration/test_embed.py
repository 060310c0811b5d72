#!/usr/bin/python3
"""examples/embed: fanout on the service's own io_context, shut down each of three ways.

  /usr/bin/python3 tests/integration/test_embed.py --server build/examples/embed/fanout-embed \
      --shutdown on-loop|after-loop|destructor

The example runs its own asio loop (fanout starts no thread), publishes `{"n":N}` to topic `ticks`
every 10 ms from a thread of its own, and feeds a journal sink through the hub's publish observer.
Asserted, for the chosen shutdown: two python-websockets clients (one with ?subscribe= from
127.0.0.1, one with a subscribe message from 127.0.0.2) receive consecutive ticks byte for byte, and
on_open chose their backpressure policy per client (disconnect, and the example's own); after SIGTERM the process prints
`embed: stopped cleanly` and exits 0 within 10 s (no hang); the clients' connections end (with close
1012 when the drain ran: on-loop); the journal holds every tick a client saw, with the seq the
client's topic counted (journal seq == n, as both count from 1 with one publisher).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (WsClient, base_parser, check, fail, log, run_test, spawn)  # noqa: E402


async def body(args):
    journal = os.path.join(tempfile.mkdtemp(prefix="fanout-embed-"), "journal.jsonl")
    p = spawn([args.server, "--port", "0", "--journal", journal, "--shutdown", args.shutdown],
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = await asyncio.get_running_loop().run_in_executor(None, p.stdout.readline)
    check(line.startswith("embed: listening on 127.0.0.1:"), f"first line: {line!r}")
    port = int(line.rsplit(":", 1)[1])
    log(f"fanout-embed --shutdown {args.shutdown} on port {port}")

    url_client = await WsClient.open(port, "/ws?subscribe=ticks", name="url-client")
    # From another loopback address: the example gives it its own policy (newest_tick_only).
    msg_client = await WsClient.open(port, "/ws", name="msg-client", local_addr=("127.0.0.2", 0))
    await msg_client.ws.send(json.dumps({"op": "subscribe", "args": ["ticks"]}))
    seen = {}
    for c in (url_client, msg_client):
        await c.expect_event("subscribe", arg="ticks")
        got = []
        for _ in range(20):
            _, text = await c._next(c.data, "tick", 10)
            got.append(text)
        first = json.loads(got[0])["n"]
        check(got == [f'{{"n":{first + i}}}' for i in range(20)], f"{c.name}: not consecutive ticks: {got[:5]}...")
        seen[c.name] = got
    log("both clients receive consecutive ticks; SIGTERM")

    p.send_signal(signal.SIGTERM)
    try:
        rc = await asyncio.get_running_loop().run_in_executor(None, lambda: p.wait(10))
    except subprocess.TimeoutExpired:
        fail(f"--shutdown {args.shutdown}: still running 10 s after SIGTERM (hang)")
    out = p.stdout.read()
    check("from 127.0.0.1 gets policy disconnect" in out and "from 127.0.0.2 gets policy newest_tick_only" in out,
          f"on_open did not choose the policy per client: {out[:2000]}")
    check(rc == 0, f"exit status {rc}; output: {out[-2000:]}")
    check("embed: stopped cleanly" in out, f"no 'stopped cleanly' line: {out[-2000:]}")
    for c in (url_client, msg_client):
        try:
            await asyncio.wait_for(c.closed.wait(), 10)
        except asyncio.TimeoutError:
            fail(f"{c.name}: connection still open after the process exited")
        if args.shutdown == "on-loop":
            check(c.close_code == 1012, f"{c.name}: {c.describe_close()}, expected close 1012 (service restart) after the drain")
    log(f"exit 0; clients closed ({url_client.describe_close()})")

    with open(journal) as f:
        records = [json.loads(line) for line in f]
    check(records, "journal is empty")
    by_seq = {r["seq"]: r for r in records}
    for c, got in seen.items():
        for text in got:
            n = json.loads(text)["n"]
            r = by_seq.get(n)
            check(r is not None and r["topic"] == "ticks" and r["payload"] == text,
                  f"journal has no seq {n} with payload {text!r} (seen by {c}): {r}")
    log(f"journal: {len(records)} records, every tick the clients saw with its seq")


parser = base_parser("embed")
parser.add_argument("--shutdown", required=True, choices=["on-loop", "after-loop", "destructor"])
run_test("embed", body, parser)

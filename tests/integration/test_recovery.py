#!/usr/bin/python3
"""Topic history, recovery on reconnect, snapshots, envelopes, keyed conflation and HTTP pull.

  /usr/bin/python3 tests/integration/test_recovery.py --server build/tests/integration/fanout-test-server

Clients are python3-websockets (and a raw socket for the slow reader); HTTP is checked with
python's http.client, an independent implementation. Every message is checked byte for byte.
"""

import asyncio
import http.client
import json
import os
import sys
import time
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (Checks, RawWS, Server, WsClient, check, check_payload, collect_topic_data,  # noqa: E402
                            fail, log, parse_payload, run_test)

SIZE = 120
RING = 5000  # history messages per topic
OV = RING + 50  # published to the overflow topic: the first 50 fall out of the ring


def http_get(port: int, target: str, headers: dict | None = None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", target, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    if own:
        conn.close()
    return r, body


def http_json(port: int, target: str, status: int = 200, **kw):
    r, body = http_get(port, target, **kw)
    check(r.status == status, f"GET {target}: expected {status}, got {r.status} {body[:200]!r}")
    check(r.getheader("Content-Type") == "application/json", f"GET {target}: content type {r.getheader('Content-Type')}")
    return r, json.loads(body)


async def expect_data_seqs(c: WsClient, topic: str, seqs, size: int = SIZE):
    for seq in seqs:
        _, m = await c.next_data(10)
        check_payload(m, topic, seq, size, c.name)


async def body(args):
    checks = Checks()
    srv = Server(args.server, ["--shards", "2", "--history-messages", str(RING), "--history-bytes", "100000000"])
    port = srv.port

    async def reconnect_and_recover():
        c = await WsClient.open(port, "/ws", "first", compression=None)
        await c.subscribe("r")
        srv.publish("r", 20, SIZE)
        await expect_data_seqs(c, "r", range(1, 21))
        await c.close()
        srv.publish("r", 30, SIZE)  # 21..50 while nobody listens
        c2 = await WsClient.open(port, "/ws", "back", compression=None)
        await c2.send_json({"op": "subscribe", "args": ["r"], "since": {"r": 20}})
        _, ack = await c2.expect_event("subscribe", arg="r", seq=50)
        check(isinstance(ack.get("epoch"), int) and ack["epoch"] > 0, f"ack without an epoch: {ack}")
        await expect_data_seqs(c2, "r", range(21, 51))
        srv.publish("r", 10, SIZE)
        await expect_data_seqs(c2, "r", range(51, 61))
        await asyncio.sleep(0.3)
        check(not c2.pending_data(), "back: data after seq 60 (a duplicate at the seam?)")
        # The same since with the ack's epoch is served too; another epoch means resync.
        c3 = await WsClient.open(port, "/ws", "epoch", compression=None)
        await c3.send_json({"op": "subscribe", "args": ["r"], "since": {"r": {"seq": 58, "epoch": ack["epoch"]}}})
        await c3.expect_event("subscribe", arg="r", seq=60)
        await expect_data_seqs(c3, "r", [59, 60])
        await c3.send_json({"op": "unsubscribe", "args": ["r"]})
        await c3.expect_event("unsubscribe", arg="r")
        await c3.send_json({"op": "subscribe", "args": ["r"], "since": {"r": {"seq": 58, "epoch": ack["epoch"] + 1}}})
        await c3.expect_event("subscribe", arg="r")
        await c3.expect_event("resync", arg="r", **{"from": 60})
        await c2.close()
        await c3.close()
    await checks.arun("a client that comes back with since gets exactly the missed messages, then live", reconnect_and_recover)

    async def recover_under_load():
        # Publishing from another thread at 2000 msg/s while clients drop and come back with since.
        srv.send("rate hot 2000 %d 4" % SIZE)
        srv.expect("rate-started hot")
        last = 0
        c = await WsClient.open(port, "/ws", "hot-0", compression=None)
        await c.subscribe("hot")
        _, m = await c.next_data(10)
        last = check_payload(m, "hot", None, SIZE, c.name)
        for round_ in range(1, 6):
            for _ in range(50):
                _, m = await c.next_data(10)
                last = check_payload(m, "hot", last + 1, SIZE, c.name)
            await c.close()
            await asyncio.sleep(0.05)  # messages go on meanwhile
            c = await WsClient.open(port, "/ws", f"hot-{round_}", compression=None)
            await c.send_json({"op": "subscribe", "args": ["hot"], "since": {"hot": last}})
            await c.expect_event("subscribe", arg="hot")
        done = srv.expect("rate-done hot", timeout=30)
        final = int(done.split()[2])
        while last < final:
            _, m = await c.next_data(10)
            last = check_payload(m, "hot", last + 1, SIZE, c.name)
        await asyncio.sleep(0.3)
        check(not c.pending_data(), "data after the last published message")
        log(f"    recovered 5 times while publishing; contiguous up to seq {final}")
        await c.close()
    await checks.arun("recovery while publishing at high rate: no gap, no duplicate", recover_under_load)

    async def overflow_resync_snapshot():
        srv.send("keyed ov 3 %d %d" % (OV, SIZE))  # keys k0, k1, k2, k0, ...: seq n has key k((n-1) % 3)
        srv.expect("published ov %d" % OV)
        c = await WsClient.open(port, "/ws", "resync", compression=None)
        await c.send_json({"op": "subscribe", "args": ["ov"], "since": {"ov": 5}})
        await c.expect_event("subscribe", arg="ov", seq=OV)
        await c.expect_event("resync", arg="ov", **{"from": OV, "first": OV - RING + 1})
        got = []
        for _ in range(3):
            _, m = await c.next_data(10)
            d = parse_payload(m, c.name)
            got.append((d["seq"], d["key"]))
        check(got == [(n, f"k{(n - 1) % 3}") for n in (OV - 2, OV - 1, OV)], f"snapshot after resync: {got}")
        # snapshot:true without since: the same three, then live.
        c2 = await WsClient.open(port, "/ws", "snap", compression=None)
        await c2.send_json({"op": "subscribe", "args": ["ov"], "snapshot": True})
        await c2.expect_event("subscribe", arg="ov", seq=OV)
        seqs = [parse_payload((await c2.next_data(10))[1])["seq"] for _ in range(3)]
        check(seqs == [OV - 2, OV - 1, OV], f"snapshot: {seqs}")
        srv.send("keyed ov 3 1 %d" % SIZE)  # seq OV + 1 with key k0: the publisher's key counter restarts
        srv.expect("published ov %d" % (OV + 1))
        check(parse_payload((await c2.next_data(10))[1])["seq"] == OV + 1, "live after the snapshot")
        await c.close()
        await c2.close()
    await checks.arun("since older than the ring: resync event and the snapshot (latest per key)", overflow_resync_snapshot)

    async def envelopes():
        c = await WsClient.open(port, "/ws?envelope=1&subscribe=env", "envelope", compression=None)
        await c.expect_event("subscribe", arg="env")
        srv.publish("env", 2, SIZE)
        for seq in (1, 2):
            _, m = await c.next_data(10)
            d = json.loads(m)
            check(d.get("topic") == "env" and d.get("seq") == seq, f"envelope: {m[:120]}")
            check(m.startswith('{"topic":"env","seq":%d,"data":{"seq":%d,' % (seq, seq)) and m.endswith('"}}'),
                  f"envelope must embed the payload verbatim: {m[:120]}")
        # Recovery replays envelopes too.
        c2 = await WsClient.open(port, "/ws?envelope=1", "envelope-since", compression=None)
        await c2.send_json({"op": "subscribe", "args": ["env"], "since": {"env": 1}})
        await c2.expect_event("subscribe", arg="env", seq=2)
        _, m = await c2.next_data(10)
        check(json.loads(m)["seq"] == 2 and json.loads(m)["data"]["seq"] == 2, f"replayed envelope: {m[:120]}")
        await c.close()
        await c2.close()
    await checks.arun("envelope mode: {topic, seq, data} built once, also for replays", envelopes)

    def http_pull():
        r, d = http_json(port, "/topics")
        names = {t["name"]: t for t in d["topics"]}
        check("r" in names and names["r"]["seq"] == 60, f"/topics: {d}")
        # The list is an operator's view (the relay serves it on its admin listener): not cached.
        check(r.getheader("Cache-Control") == "no-cache", f"Cache-Control {r.getheader('Cache-Control')}")
        # Pages: `next` is the `after` of the following page, null on the last.
        total = d["total"]
        check(total == len(d["topics"]) and d["next"] is None, f"/topics: one page of {total}: {d}")
        seen, after = [], None
        for _ in range(total + 1):
            r, page = http_json(port, "/topics?limit=1" + (f"&after={quote(after, safe='')}" if after else ""))
            seen += [t["name"] for t in page["topics"]]
            after = page["next"]
            if after is None:
                break
        check(seen == [t["name"] for t in d["topics"]], f"/topics?limit=1 page by page: {seen}")
        http_json(port, "/topics?limit=0", status=400)
        r, d = http_json(port, "/topics/r/history?since=40&limit=5")
        check([m["seq"] for m in d["messages"]] == [41, 42, 43, 44, 45] and d["seq"] == 60, f"history: {d}")
        check(d["messages"][0]["data"]["seq"] == 41 and d["truncated"] is False, f"history: {d['messages'][0]}")
        r, d = http_json(port, "/topics/ov/history?since=1")
        check(d["truncated"] is True and d["first"] == OV - RING + 2 and len(d["messages"]) == 100,
              f"ov history: first {d['first']}, {len(d['messages'])} messages")
        r, d = http_json(port, "/topics/ov/snapshot")
        keys = {m["key"]: m["seq"] for m in d["messages"]}
        want = {f"k{(n - 1) % 3}": n for n in range(1, OV + 1)}
        want["k0"] = OV + 1
        check(keys == want and len(d["messages"]) == 3, f"snapshot: {keys}, expected {want}")
        check([m["seq"] for m in d["messages"]] == sorted(keys.values()), "snapshot in seq order")
        etag = r.getheader("ETag")
        check(etag == '"%d-%d"' % (d["epoch"], OV + 1), f"ETag {etag}")
        r, body = http_get(port, "/topics/ov/snapshot", {"If-None-Match": etag})
        check(r.status == 304 and body == b"", f"If-None-Match: {r.status} {body[:80]!r}")
        for target, status in [("/topics/r/history?since=abc", 400), ("/topics/r/history?limit=0", 400),
                               ("/topics/r/history?limit=100000", 400), ("/topics/r/history?since=-1", 400),
                               ("/topics/nope/snapshot", 404), ("/topics/nope/history", 404),
                               ("/topics/r/other", 404), ("/topics/%zz/snapshot", 400)]:
            _, d = http_json(port, target, status)
            check(isinstance(d.get("error"), str) and d["error"], f"{target}: {d}")
        # Keep-alive: several requests on one connection.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(3):
            r, body = http_get(port, "/topics/r/history?since=59", conn=conn)
            check(r.status == 200 and json.loads(body)["messages"][0]["seq"] == 60, f"keep-alive: {r.status}")
        conn.close()
    checks.run("HTTP pull: /topics, snapshot with ETag, history, bad parameters, keep-alive", http_pull)

    srv.quit()

    def keyed_conflation():
        s2 = Server(args.server, ["--policy", "conflate", "--max-queue-bytes", "16384", "--history-messages", "0"],
                    name="conflate-server")
        slow = RawWS(s2.port, "/ws?subscribe=kc", rcvbuf=4096)
        first = slow.recv_text(10)
        check('"subscribe"' in first, f"slow: expected an ack, got {first[:80]}")
        s2.require_subscribers(1)
        s2.send("keyed kc 20 20000 300")  # k0..k19; the newest of k(i) is seq 19981+i (6 MB: past the kernel buffers)
        s2.expect("published kc 20000", timeout=60)
        st = s2.stats()
        check(st["conflated"] > 0, f"the slow reader should have been conflated: {st}")
        seqs, last_of = [], {}
        deadline = time.time() + 30
        while len(last_of) < 20 or max(last_of.values()) < 20000:
            check(time.time() < deadline, f"slow reader: newest values missing: {last_of}")
            d = json.loads(slow.recv_text(10))
            seqs.append(d["seq"])
            last_of[d["key"]] = d["seq"]
        check(seqs == sorted(seqs), "keyed conflation must deliver in seq order")
        want = {f"k{i}": 19981 + i for i in range(20)}
        check(last_of == want, f"the slow reader must end with the newest value of every key: {last_of}")
        log(f"    slow reader got {len(seqs)} of 20000 messages, conflated {st['conflated']}, "
            f"newest of all 20 keys")
        slow.close_socket()
        s2.quit()
    checks.run("keyed conflation: a slow reader ends with the newest value of every key, in seq order", keyed_conflation)

    def history_memory_bound():
        s3 = Server(args.server, ["--history-messages", "100000", "--history-bytes", "20000"], name="bounded")
        s3.publish("big", 1000, 500)
        _, d = http_json(s3.port, "/topics")
        t = {x["name"]: x for x in d["topics"]}["big"]
        check(t["history"]["bytes"] <= 20000 and t["history"]["messages"] < 1000, f"history not bounded: {t}")
        log(f"    1000 x 500 B published, history holds {t['history']['messages']} messages, {t['history']['bytes']} B")
        s3.quit()
    checks.run("history memory stays within its byte limit", history_memory_bound)

    checks.finish()


if __name__ == "__main__":
    run_test("recovery", body)

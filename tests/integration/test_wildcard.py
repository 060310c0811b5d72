#!/usr/bin/python3
"""Wildcard subscriptions (docs/protocol.md, "Patterns") on fanout-relay, over real sockets.

  /usr/bin/python3 tests/integration/test_wildcard.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

One relay (two shards) with declared topics, [api] to publish (to existing and new topics), small
pattern limits, and [[acl]] rules with anonymous clients allowed. Clients use the envelope path, so
each message names its concrete topic and seq. Checks:
  * a pattern gets the topics that exist (the ack lists them with seq and epoch) with `since` per
    topic under the pattern (replay of px:BTC after 1, none for px:ETH), then live messages;
  * a topic created later (a publish to px:SOL) is announced ({"event":"subscribe","arg":"px:SOL",
    "pattern":"px:*"}) and its first message arrives; a topic the pattern does not match does not;
  * unsubscribing the pattern stops its topics, except one also subscribed by name;
  * limits: a third pattern past max_patterns = 2 (4004), a topic past max_pattern_topics = 3
    (4004 once to each client, no data), an invalid pattern (4003), unsubscribing an unknown pattern (4006);
  * access rules: a pattern is allowed only when every topic it could match is (`*` and `sx:*`
    denied, 4403; `q:*` needs a token, 4401), `px:*` allowed for anonymous clients;
  * a pattern with "interval_ms" throttles the topics it brings (ack says interval_ms; 5 quick
    publishes arrive at most twice, the newest last, in seq order).
"""

import asyncio
import http.client
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import WsClient  # noqa: E402
from relay_testlib import HOST, Relay, check, log, run_relay_test, write_file  # noqa: E402

KEY = "api-key-for-the-wildcard-test-0123"


def publish(port: int, topic: str, data) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    body = json.dumps({"topic": topic, "data": data})
    conn.request("POST", "/api/publish", body=body,
                 headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    r = conn.getresponse()
    text = r.read()
    conn.close()
    check(r.status == 200, f"publish to {topic}: {r.status} {text!r}")


async def next_message(c: WsClient, what: str) -> dict:
    _, m = await c.next_data(10)
    d = json.loads(m)
    check("topic" in d and "seq" in d, f"{c.name}: {what}: not an envelope: {m!r}")
    return d


async def expect_message(c: WsClient, topic: str, seq: int, data, what: str):
    d = await next_message(c, what)
    check((d["topic"], d["seq"], d["data"]) == (topic, seq, data),
          f"{c.name}: {what}: expected {topic} seq {seq} {data!r}, got {d}")


async def expect_error(c: WsClient, code: int, arg: str, what: str) -> dict:
    _, d = await c.next_event(10, what)
    # Refusals by the access rules name the pattern in "msg", the others in "arg".
    named = d.get("arg") == arg or ("arg" not in d and json.dumps(arg) in d.get("msg", ""))
    check(d.get("event") == "error" and d.get("code") == code and named,
          f"{c.name}: {what}: expected error {code} for {arg}, got {d}")
    return d


async def quiet(c: WsClient, what: str):
    """A ping's pong proves that everything queued before it arrived: then no data may be pending."""
    await c.send_json({"op": "ping"})
    await c.expect_event("pong")
    stray = c.pending_data()
    check(not stray, f"{c.name}: {what}: unexpected data {stray}")


async def body(args):
    d = tempfile.mkdtemp(prefix="fanout-wildcard-")
    keys = write_file(d, "api.keys", f"{KEY}\n")
    jwt_keys = write_file(d, "keys.json", json.dumps({"keys": [{"kid": "k", "alg": "HS256",
                                                                  "secret": "s" * 32}]}))
    conf = write_file(d, "relay.toml", f"""
[server]
shards = 2
path = ["/ws"]
envelope_path = ["/ws"]
[topics]
declare = ["px:BTC", "px:ETH", "py:A", "pz:A"]
[limits]
max_patterns = 2
max_pattern_topics = 3
[api]
key_file = "{keys}"
[auth]
key_file = "{jwt_keys}"
allow_anonymous = true
[[acl]]
pattern = "px:*"
access = "public"
[[acl]]
pattern = "py:*"
access = "public"
[[acl]]
pattern = "pz:*"
access = "public"
[[acl]]
pattern = "sx:*"
access = "deny"
""")
    relay = Relay(args.relay, ["--config", conf, "--stats-interval", "0", "--listen", f"{HOST}:0"])
    api_port = relay.admin_port
    check(api_port is not None, "the relay names no admin port")
    pub = lambda topic, data: asyncio.to_thread(publish, api_port, topic, data)  # noqa: E731

    await pub("px:BTC", "b1")
    await pub("px:BTC", "b2")
    await pub("px:ETH", "e1")

    log("a pattern: existing topics, since per topic under it, live messages")
    a = await WsClient.open(relay.port, "/ws", name="A")
    await a.send_json({"op": "subscribe", "args": ["px:*"], "since": {"px:BTC": 1}})
    _, ack = await a.expect_event("subscribe", arg="px:*", pattern=True)
    topics = ack.get("topics", {})
    check(sorted(topics) == ["px:BTC", "px:ETH"], f"ack lists the existing topics: {ack}")
    check(topics["px:BTC"]["seq"] == 2 and topics["px:ETH"]["seq"] == 1 and topics["px:BTC"]["epoch"] > 0,
          f"seq and epoch per topic: {ack}")
    await expect_message(a, "px:BTC", 2, "b2", "replay after since 1")
    await pub("px:ETH", "e2")
    await expect_message(a, "px:ETH", 2, "e2", "live on an existing topic")

    log("a topic created later is joined, its first message included")
    await pub("py:A", "not px")
    await pub("px:SOL", "s1")
    _, ev = await a.expect_event("subscribe", arg="px:SOL", pattern="px:*")
    check(ev.get("epoch", 0) > 0, f"announced with its epoch: {ev}")
    await expect_message(a, "px:SOL", 1, "s1", "first message of a new topic")
    await pub("px:SOL", "s2")
    await expect_message(a, "px:SOL", 2, "s2", "live on the new topic")
    await quiet(a, "nothing from py:A")

    log("limits, invalid patterns, access rules")
    b = await WsClient.open(relay.port, "/ws", name="B")
    await b.send_json({"op": "subscribe", "args": ["px:*", "py:*", "pz:*", "px:B*", "*", "sx:*", "q:*"]})
    _, ack = await b.expect_event("subscribe", arg="px:*", pattern=True)
    check(sorted(ack["topics"]) == ["px:BTC", "px:ETH", "px:SOL"], f"B's px:* ack: {ack}")
    await b.expect_event("subscribe", arg="py:*", pattern=True)
    await expect_error(b, 4004, "pz:*", "a third pattern past max_patterns 2")
    await expect_error(b, 4003, "px:B*", "'*' inside a segment")
    await expect_error(b, 4403, "*", "'*' could match sx:x, denied")
    await expect_error(b, 4403, "sx:*", "a denied prefix")
    await expect_error(b, 4401, "q:*", "the default access needs a token")
    await pub("px:ADA", "a1")  # a 4th px topic: past max_pattern_topics 3 for both clients
    for c in (a, b):
        await expect_error(c, 4004, "px:*", "past max_pattern_topics")
    await pub("px:ADA", "a2")
    await pub("px:BTC", "b3")
    for c in (a, b):
        await expect_message(c, "px:BTC", 3, "b3", "the 3 topics still arrive")
        await quiet(c, "nothing of px:ADA, and the limit told once")
        check(not c.pending_events(), f"{c.name}: no more events: {c.pending_events()}")

    log("unsubscribe the pattern: its topics stop, one subscribed by name stays")
    await a.send_json({"op": "subscribe", "args": ["px:ETH"]})
    await a.expect_event("subscribe", arg="px:ETH")
    await a.send_json({"op": "unsubscribe", "args": ["px:*", "px:*"]})
    await a.expect_event("unsubscribe", arg="px:*")
    _, d = await a.next_event(10, "second unsubscribe")
    check(d.get("event") == "error" and d.get("code") == 4006, f"unsubscribing an unknown pattern: {d}")
    for t in ("px:BTC", "px:SOL"):
        await pub(t, "after")
    await pub("px:NEW", "after")  # created after the pattern went: not joined
    await pub("px:ETH", "e3")
    await expect_message(a, "px:ETH", 3, "e3", "the topic subscribed by name stays")
    await quiet(a, "nothing from the pattern's other topics")
    ev = a.pending_events()
    check(not ev, f"A: no announcement after the pattern went: {ev}")

    log("a pattern's interval_ms throttles every topic it brings (newest wins), the ack says so")
    c = await WsClient.open(relay.port, "/ws", name="C")
    await c.send_json({"op": "subscribe", "args": ["pz:*"], "interval_ms": 1000, "drop_notices": True})
    _, ack = await c.expect_event("subscribe", arg="pz:*", pattern=True)
    check(ack.get("interval_ms") == 1000 and list(ack.get("topics", {})) == ["pz:A"], f"C's throttled ack: {ack}")
    for i in range(1, 6):
        await pub("pz:A", f"z{i}")
    seen = []
    while not seen or seen[-1]["data"] != "z5":
        seen.append(await next_message(c, "throttled pz:A"))
    check(len(seen) <= 2 and all(m["topic"] == "pz:A" for m in seen),
          f"5 publishes within one interval reach a throttled pattern client at most twice: {seen}")
    check([m["seq"] for m in seen] == sorted(m["seq"] for m in seen), f"in seq order: {seen}")
    await quiet(c, "nothing after the newest value")

    for c in (a, b, c):
        await c.close()
    code = relay.terminate()
    check(code == 0, f"relay exit code {code}")


if __name__ == "__main__":
    run_relay_test("wildcard", body)

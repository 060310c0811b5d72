#!/usr/bin/python3
"""fanout-relay SIGHUP reload of limits and access rules, with clients staying connected.

  /usr/bin/python3 tests/integration/test_relay_ops_reload.py --server build/tests/integration/fanout-test-server \\
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Checks: a client connected before a SIGHUP that lowers [limits] max_message_bytes and
max_subscriptions and turns an [[acl]] rule from public to deny stays connected and keeps receiving;
the reload line names each change ("max_message_bytes 65536 -> 1024", "acl ..."); the lowered
subscription limit refuses that client's next subscribe, its subscription made before the deny
stays, and a message over the new size closes it with 1009. A client connecting after the reload is
refused the denied topic and still gets the public one. A file the relay refuses (a bad [[acl]]
pattern) is logged and the configuration in use stays: the topic stays denied, the old client limits
stay in force. A change that needs a restart (proxy_protocol) is logged as such and not applied.
"""

import asyncio
import json
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (HOST, Checks, Relay, check, check_open, close_all, log, relay_client,  # noqa: E402
                           run_relay_test, write_file)

PUBLIC = "tickers:BTC-USDT"  # published by the relay's bundled simulator
TRADES = ["trades:BTC-USDT", "trades:ETH-USDT"]
SPARE = ["tickers:ETH-USDT", "tickers:SOL-USDT"]


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-ops-reload-") as tmp:
        await run(args, checks, tmp)
    checks.finish()


def config(tmp: str, max_message_bytes: int, max_subscriptions: int, trades: str, extra: str = "") -> str:
    return write_file(tmp, "relay.toml", f"""\
[server]
listen = ["{HOST}:0"]
{extra}
[topics]
declare = [{", ".join(f'"{t}"' for t in [PUBLIC, *SPARE, *TRADES])}]
[limits]
max_message_bytes = {max_message_bytes}
max_subscriptions = {max_subscriptions}
[[acl]]
pattern = "tickers:*"
access = "public"
[[acl]]
pattern = "trades:*"
access = "{trades}"
""")


async def sighup(relay: Relay, pattern: str, what: str) -> str:
    n = relay.line_count()
    os.kill(relay.pid, signal.SIGHUP)
    _, line = await relay.wait_line(pattern, after=n, what=what)
    log(f"    {line}")
    return line


async def expect_error(stream, topic: str, who: str) -> dict:
    await stream.client.send_json({"op": "subscribe", "args": [topic]})
    _, d = await stream.client.next_event(10, f"{who}: the answer to subscribe {topic}")
    check(d.get("event") == "error", f"{who}: subscribe {topic} after the reload: {d}, expected an error")
    return d


async def run(args, checks: Checks, tmp: str):
    async def reload_limits_and_acl():
        path = config(tmp, 65536, 8, "public")
        relay = Relay(args.relay, ["--config", path], name="relay-reload-limits")
        clients = []
        try:
            before = await relay_client(relay.port, [PUBLIC, TRADES[0]], "client-before")
            clients.append(before)
            await before.count_each(2, topics=[PUBLIC])

            # Lower the limits, deny trades:*; the client stays connected and keeps receiving.
            config(tmp, 1024, 2, "deny")
            line = await sighup(relay, r"SIGHUP: configuration reloaded", "the reload line")
            for change in ("max_message_bytes 65536 -> 1024", "max_subscriptions 8 -> 2", "acl ",
                           "trades:*=deny"):
                check(change in line, f"the reload line does not name {change!r}: {line!r}")
            check("needs a restart" not in line, f"limits and rules reported as needing a restart: {line!r}")
            await before.more_each(3, topics=[PUBLIC])
            check_open(before, when="after the reload")

            # A new client: the denied topic is refused, the public one served.
            after = await relay_client(relay.port, [PUBLIC], "client-after")
            clients.append(after)
            d = await expect_error(after, TRADES[1], "client-after")
            check("not allowed" in d.get("msg", ""), f"client-after: denied subscribe answered {d}")
            await after.count_each(2, topics=[PUBLIC])

            # The client from before: its next subscribe meets the lower subscription limit (it has 2).
            d = await expect_error(before, SPARE[0], "client-before")
            check("at most 2 subscriptions" in d.get("msg", ""), f"client-before: over the new limit: {d}")
            # ... and a message over the new size limit closes it with 1009.
            await before.client.send(json.dumps({"op": "ping", "pad": "x" * 2000}))
            await asyncio.wait_for(before.client.closed.wait(), 20)
            check(before.client.close_code == 1009,
                  f"client-before after a 2 KB message: {before.client.describe_close()}, expected 1009")

            # A file the relay refuses keeps the configuration in use.
            write_file(tmp, "relay.toml", open(path).read().replace('pattern = "trades:*"', 'pattern = "tr*des"')
                       .replace("max_subscriptions = 2", "max_subscriptions = 50"))
            await sighup(relay, r"SIGHUP: configuration refused, keeping the one in use", "the refusal")
            late = await relay_client(relay.port, [PUBLIC, SPARE[0]], "client-after-bad-file")
            clients.append(late)
            d = await expect_error(late, TRADES[0], "client-after-bad-file")
            check("not allowed" in d.get("msg", ""), f"after the bad file, trades:* answered {d}")
            d = await expect_error(late, SPARE[1], "client-after-bad-file")  # it holds 2 of 2
            check("at most 2 subscriptions" in d.get("msg", ""), f"after the bad file, the limit: {d}")

            # What needs a restart is logged so, and the live settings of the same file apply.
            config(tmp, 1024, 3, "public", extra="proxy_protocol = true")
            line = await sighup(relay, r"SIGHUP: configuration reloaded", "the reload line")
            check("needs a restart: proxy_protocol" in line, f"proxy_protocol not reported for a restart: {line!r}")
            check("max_subscriptions 2 -> 3" in line, f"the live change with a restart's: {line!r}")
            await late.client.subscribe(TRADES[0])  # public again, and a third subscription fits
            check_open(after, late, when="after the last reload")
            await after.more_each(2, topics=[PUBLIC])
            relay.require_alive("after the reloads")
        finally:
            await close_all(*clients)
            check(await relay.aterminate() == 0, "relay-reload-limits: exit code")

    await checks.arun("SIGHUP: lower limits and a denied topic apply with clients connected; a bad file keeps them",
                      reload_limits_and_acl)


if __name__ == "__main__":
    run_relay_test("relay_ops_reload", body)

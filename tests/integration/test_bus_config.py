#!/usr/bin/python3
"""fanout-relay's bus settings: clear errors for bad ones, and an edge that cannot reach Redis.

  /usr/bin/python3 tests/integration/test_bus_config.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Checks: bad roles, a role without Redis, bad Redis addresses and lease settings, upstreams on an
edge: exit 2 with a message naming the problem. A valid [redis] file passes --check. An edge whose
Redis is down still starts, serves clients (subscribe acknowledged), logs the failed connection and
retries; when Redis comes up on that port, it connects and delivers. Role both with Redis: one
process leads its upstream and serves its clients through Redis; on SIGTERM it exits 0 and releases
its lease, so a standby takes over long before that lease (60 s) could have expired; its journal sink
holds every message its client got, under the seq the client got. Role ingest refuses [[sink]].
"""

import asyncio
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bus_testlib import (STREAMS, TOPICS, BusClient, Redis, check, edge, free_port, ingest, log,  # noqa: E402
                         wait_leader)
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, run_command, run_relay_test,  # noqa: E402
                           subscribe_msg, write_file)


async def body(args):
    checks = Checks()
    tmp = tempfile.mkdtemp(prefix="fanout-bus-config-")

    async def bad_settings():
        cases = [
            (["--role", "leader"], "role 'leader' must be both, ingest or edge"),
            (["--role", "edge"], "role edge needs a Redis"),
            (["--role", "ingest"], "role ingest needs a Redis"),
            (["--redis", "127.0.0.1:0"], "needs a port 1..65535"),
            (["--redis", "127.0.0.1:99999"], "redis address '127.0.0.1:99999' needs a port 1..65535"),
            (["--redis", "redis://:6379"], "needs a host"),
            (["--redis", "127.0.0.1:6379", "--lease-ttl-ms", "50"], "lease_ttl_ms must be at least 100"),
            (["--redis", "127.0.0.1:6379", "--presence-ttl-ms", "50"], "presence_ttl_ms must be at least 100"),
            (["--role", "edge", "--redis", "127.0.0.1:6379", "--upstream", "ws://127.0.0.1:1/ws"],
             "role edge takes no upstreams"),
        ]
        for argv, want in cases:
            rc, out, err = run_command([args.relay, "--check", *argv])
            check(rc == 2 and want in err, f"{argv}: exit {rc}, stderr {err!r}; expected 2 and {want!r}")
            log(f"    {' '.join(argv)}: {err.strip()}")
        path = write_file(tmp, "bad.toml", 'role = "edge"\n[redis]\nport = "x"\n')
        rc, _, err = run_command([args.relay, "--check", "--config", path])
        check(rc == 2 and "'port' has the wrong type" in err, f"bad.toml: exit {rc}, stderr {err!r}")
        # Sinks record what the hub publishes (its publish observer): an ingest node publishes into Redis only.
        path = write_file(tmp, "sink.toml", 'role = "ingest"\n[redis]\nport = 6390\n'
                                            '[[sink]]\ntype = "journal"\npath = "j.jsonl"\n')
        rc, _, err = run_command([args.relay, "--check", "--config", path])
        check(rc == 2 and "role ingest publishes only into Redis" in err, f"sink.toml: exit {rc}, stderr {err!r}")
        path = write_file(tmp, "good.toml", 'role = "edge"\n[redis]\nurl = "redis://127.0.0.1:6390"\n'
                                            'lease_ttl_ms = 2000\nstream_maxlen = 500\nsubscribe_all = true\n')
        # --check binds the listen addresses: free ports, not the defaults another process may hold.
        rc, out, err = run_command([args.relay, "--check", "--config", path, "--listen", "127.0.0.1:0",
                                    "--admin-listen", "127.0.0.1:0"])
        check(rc == 0 and "role edge over redis 127.0.0.1:6390" in out, f"good.toml: exit {rc}, {out!r} {err!r}")
    await checks.arun("bad bus settings: exit 2 with the reason; a good [redis] passes --check", bad_settings)

    async def redis_late():
        port = free_port()
        # Without Redis the edge cannot learn which topics exist: a declared one can be joined meanwhile.
        e = edge(args.relay, type("R", (), {"port": port})(), "edge", args=["--topic", TOPICS[0]],
                 wait_topics=False)
        await e.wait_line(r"redis subscriptions connection down", what="the failed connection logged")
        c = await BusClient.open(e.port, TOPICS[:1], "client")  # served meanwhile
        redis = Redis(port=port)
        sim = FeedSim(args.sim, rate=40)
        leader = ingest(args.relay, redis, sim.url, "ingest")
        await wait_leader([leader])
        await e.wait_line(r"redis subscriptions connection up", what="connected once Redis is there", timeout=30)
        await c.more_each(10)
        c.check_bus_contiguous()
        await c.client.close()
    await checks.arun("an edge without its Redis starts, serves, and connects when Redis appears", redis_late)

    async def both_roles():
        redis = Redis()
        sim = FeedSim(args.sim, rate=40)
        journal = os.path.join(tmp, "both.jsonl")
        conf = write_file(tmp, "both.toml", f'[[sink]]\ntype = "journal"\npath = "{journal}"\n')
        node = Relay(args.relay, ["--config", conf,
                                  "--redis", f"127.0.0.1:{redis.port}", "--lease-ttl-ms", 60000, "--upstream", sim.url,
                                  "--subscribe", subscribe_msg(STREAMS), "--route", ROUTE,
                                  "--listen", "127.0.0.1:0", "--stats-interval", 1], name="both")
        await node.wait_line(r"lease upstream won: fence 1", what="the single node leads its upstream")
        # Its clients join what exists in Redis: the topics, once their first messages went through.
        await node.wait_line(rf"bus: .* known {len(TOPICS)}\b", what="the topics known through Redis")
        c = await BusClient.open(node.port, TOPICS, "client")
        await c.more_each(10)
        c.check_bus_contiguous()
        c.check_upstream_increasing(contiguous=True)
        await c.client.close()
        # A standby takes over at once when the leader stops cleanly (it deletes its lease).
        standby = ingest(args.relay, redis, sim.url, "standby", ttl_ms=6000)
        mark = standby.line_count()
        rc = await node.aterminate()
        check(rc == 0, f"SIGTERM: exit {rc}; " + node.describe_death())
        await standby.wait_line(r"lease upstream won: fence 2", after=mark, timeout=30,
                                what="takeover well before the leader's 60 s lease could expire")
        # Its sink recorded what its hub published, under the hub's (the bus's) seq, not the upstream's.
        journaled = {}
        with open(journal, encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                journaled[(e["topic"], e["seq"])] = json.loads(e["payload"])
        n = 0
        for topic, got in c.got.items():
            for seq, _, text in got:
                check(journaled.get((topic, seq)) == json.loads(text)["data"],
                      f"{topic} seq {seq}: the client's message is not in the journal under that seq")
                n += 1
        log(f"    {n} client messages journaled under their seq")
    await checks.arun("role both with [redis]: ingest and edge in one process, through Redis", both_roles)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("bus_config", body, timeout=120)

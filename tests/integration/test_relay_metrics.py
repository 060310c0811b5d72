#!/usr/bin/python3
"""GET /metrics of fanout-relay (on its admin listener), parsed by the real Prometheus parser,
matches what the test did; the client port serves none of the admin routes.

  /usr/bin/python3 tests/integration/test_relay_metrics.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

fanout-feed-sim (its own process) -> fanout-relay (--policy drop_oldest, small client queues) ->
python clients. Phase 1: four clients with five subscriptions over three topics; the simulator is
then silenced and, once the relay is quiet, the scrape must say exactly: 4 WebSocket connections,
5 subscriptions, 3 topics with subscribers, published == distinct messages the clients got (or,
with a hub that keeps idle topics, all the simulator sent), delivered == messages
the clients got, nothing dropped, per-topic routed counts == what the simulator sent, upstream live
with one connect. Phase 2: a client that does not read while the feed runs fast; drops are counted
under policy="drop_oldest", and once it (and a reading client of the same topic, which may lose
some too at this rate with 16 KiB queues) has read everything, delivered - received == dropped:
the counters account for exactly what is missing. The text must parse with
prometheus_client.parser; histograms must be cumulative with _count == the +Inf bucket.
Also: --no-metrics/--no-status-page answer 404; status_max_topics bounds the per-topic series (the
rest is topic="(other)"); bad [http] settings exit 2; with a plain and a wss listener the server
series carry listener="host:port" and a wss-only client's writes are sampled for the latency.
"""

import asyncio
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import OP_CLOSE, RawWS, is_event  # noqa: E402
from metrics_testlib import ascrape, http_get  # noqa: E402
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, check, close_all, declare_args, fail,  # noqa: E402
                           log, relay_client, run_command, run_relay_test, subscribe_msg,
                           write_file)
from test_tls import make_certs, trusting_context, wss_client  # noqa: E402

STREAMS = [("tickers", "BTC-USDT"), ("tickers", "ETH-USDT"),
           ("trades", "BTC-USDT"), ("trades", "ETH-USDT")]
HOT = "tickers:BTC-USDT"


async def wait_quiet(relay, clients, what: str, timeout: float = 30):
    """Scrapes until published and delivered stop moving and every client has what was delivered
    to it (delivered == received by the clients, or == received + dropped given `dropped`)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        for c in clients:
            c.drain()
        m = await ascrape(relay.admin_port)
        now = (m.value("fanout_published_total"), m.value("fanout_delivered_total"),
               m.value("fanout_upstream_messages_total", upstream="upstream"))
        received = sum(len(v) for c in clients for v in c.got.values())
        if now == last and now[1] == received:
            return m
        if time.monotonic() > deadline:
            fail(f"{what}: relay not quiet within {timeout} s: published/delivered/upstream {now}, "
                 f"clients received {received}")
        last = now
        await asyncio.sleep(0.3)


async def body(args):
    checks = Checks()
    sim = FeedSim(args.sim, rate=50)
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 0,
                               "--policy", "drop_oldest", "--max-queue-bytes", 16384])
    await relay.wait_line(Relay.live_re("upstream"), what="upstream live")

    async def before_clients():
        m = await ascrape(relay.admin_port)
        check(m.value("fanout_websocket_connections") == 0, "connections before any client")
        check(m.value("fanout_subscriptions") == 0, "subscriptions before any client")
        check(m.value("fanout_topics_with_subscribers") == 0, "topics before any client")
        check(m.value("fanout_delivered_total") == 0, "nothing delivered before any client")
        check(m.type_of("fanout_publish_to_write_seconds") == "histogram", "latency is a histogram")
        check(m.type_of("fanout_delivered") == "counter", "delivered is a counter")
        check(m.type_of("fanout_connections") == "gauge", "connections is a gauge")
    await checks.arun("scrape before any client: zeros, and the types", before_clients)

    clients = [
        await relay_client(relay.port, [HOT], "client-A(url)", via_url=True),
        await relay_client(relay.port, [HOT, "trades:ETH-USDT"], "client-B"),
        await relay_client(relay.port, ["trades:ETH-USDT"], "client-C"),
        await relay_client(relay.port, ["tickers:ETH-USDT"], "client-D"),
    ]
    for c in clients:
        await c.count_each(20)
    await sim.acommand("silent on")  # no more data: the numbers can settle
    m = await wait_quiet(relay, clients, "after silencing the feed")
    sim_stats = await sim.astats()

    async def gauges():
        check(m.value("fanout_websocket_connections") == 4,
              f"websocket connections {m.value('fanout_websocket_connections')}, expected 4")
        check(m.value("fanout_subscriptions") == 5, f"subscriptions {m.value('fanout_subscriptions')}, expected 5")
        check(m.value("fanout_topics_with_subscribers") == 3,
              f"topics with subscribers {m.value('fanout_topics_with_subscribers')}, expected 3")
        check(m.value("fanout_connections_upgraded_total") == 4, "upgrades")
        check(m.value("fanout_queued_bytes") == 0, "queued bytes of clients that keep up")
        # The server-wide queue budget (docs/tuning.md): in force by default, never acting on clients keeping up.
        check((m.value("fanout_queue_budget_bytes") or 0) > 0, "queue budget in force by default")
        check(m.value("fanout_queue_memory_bytes", kind="slots") is not None, "queue memory (slots) exported")
        check(m.value("fanout_budget_dropped_total") == 0, "budget drops while keeping up")
        check(m.value("fanout_budget_cap_frames") == 0, "budget cap while keeping up")
    await checks.arun("connections, subscriptions, topics", gauges)

    async def counts():
        received = sum(len(v) for c in clients for v in c.got.values())
        distinct = len({(t, q) for c in clients for t, v in c.got.items() for q, _ in v})
        check(m.value("fanout_delivered_total") == received,
              f"delivered_total {m.value('fanout_delivered_total')} != {received} messages the clients got")
        # Hub::published() counts the publishes that found subscribers; a hub that keeps topics
        # without members (history) counts every accepted publish: the simulator's total.
        published = m.value("fanout_published_total")
        check(published in (distinct, sim_stats["messages_sent"]),
              f"published_total {published}: neither the {distinct} distinct messages the clients got "
              f"nor the {sim_stats['messages_sent']} the simulator sent")
        for c in clients:
            for t in c.topics:
                c.check_contiguous(t)
        for policy in ("drop_oldest", "drop_newest", "conflate"):
            check(m.value("fanout_dropped_total", policy=policy) == 0, f"dropped {policy} while keeping up")
        check(m.value("fanout_slow_disconnects_total", reason="policy") == 0, "slow disconnects")
        log(f"    delivered {received}, published {distinct}")
    await checks.arun("published == distinct messages received, delivered == all received", counts)

    async def per_topic_and_upstream():
        routed = m.series("fanout_relay_topic_messages_total")
        by_topic = {dict(k)["topic"]: v for k, v in routed.items()}
        check(set(by_topic) == {f"{c}:{i}" for c, i in STREAMS}, f"per-topic series {sorted(by_topic)}")
        check(sum(by_topic.values()) == sim_stats["messages_sent"],
              f"routed per topic sum {sum(by_topic.values())} != simulator sent {sim_stats['messages_sent']}")
        up = m.value("fanout_upstream_messages_total", upstream="upstream")
        # The rest of what the upstream delivered is the simulator's subscribe acks (not forwarded).
        # (and "pong" answers to the relay's heartbeat, every 15 s).
        check(0 < up - sum(by_topic.values()) <= len(STREAMS) + 10,
              f"upstream messages {up} vs routed {sum(by_topic.values())}")
        check(m.value("fanout_upstream_state", upstream="upstream", state="live") == 1, "upstream live")
        for st in ("stopped", "connecting", "backing_off"):
            check(m.value("fanout_upstream_state", upstream="upstream", state=st) == 0, f"state {st} is 0")
        check(m.value("fanout_upstream_connects_total", upstream="upstream") == 1, "one connect")
        check(m.value("fanout_upstream_reconnects_total", upstream="upstream") == 0, "no reconnect")
        check(m.value("fanout_upstream_bytes_total", upstream="upstream") > 0, "upstream bytes")
    await checks.arun("per-topic routed == simulator's sent; upstream state and connects", per_topic_and_upstream)

    async def histogram():
        buckets = m.series("fanout_publish_to_write_seconds_bucket")
        by_le = sorted(((float(dict(k)["le"]), v) for k, v in buckets.items()))
        check(by_le[-1][0] == float("inf"), "a +Inf bucket")
        check(all(a[1] <= b[1] for a, b in zip(by_le, by_le[1:])), f"buckets not cumulative: {by_le}")
        count = m.value("fanout_publish_to_write_seconds_count")
        check(count == by_le[-1][1], f"_count {count} != +Inf bucket {by_le[-1][1]}")
        check(0 < count <= m.value("fanout_gather_writes_total"),
              f"one sample per write with data: {count} samples, {m.value('fanout_gather_writes_total')} writes")
        check(m.value("fanout_publish_to_write_seconds_sum") >= 0, "_sum")
        log(f"    {int(count)} samples, mean {m.value('fanout_publish_to_write_seconds_sum') / count * 1e6:.0f} us")
    await checks.arun("publish-to-write histogram: cumulative, one sample per write", histogram)

    # Phase 2: a client that does not read, on the hot topic, while the feed runs fast.
    await close_all(*clients[1:])
    fast = clients[0]
    slow = await asyncio.to_thread(RawWS, relay.port, "/ws?subscribe=" + HOT, 10, 4096)
    before = await ascrape(relay.admin_port)
    base_delivered = before.value("fanout_delivered_total")
    base_received = sum(len(v) for v in fast.got.values())
    await sim.acommand("rate 2000")
    await sim.acommand("silent off")

    async def drops_counted():
        deadline = time.monotonic() + 40
        while True:
            fast.drain()
            d = (await ascrape(relay.admin_port)).value("fanout_dropped_total", policy="drop_oldest")
            if d > 0:
                log(f"    {int(d)} dropped so far")
                return
            if time.monotonic() > deadline:
                fail("no drop counted for a client that does not read within 40 s")
            await asyncio.sleep(0.2)
    await checks.arun("a client that does not read: drops counted under its policy", drops_counted)
    await sim.acommand("silent on")
    await sim.acommand("rate 50")

    async def drops_match_missing():
        # Read everything the slow client was sent, until the relay holds nothing more for it.
        slow_data = 0
        quiet_since = None
        deadline = time.monotonic() + 60
        while True:
            try:
                op, payload = await asyncio.to_thread(slow.recv_message, 0.5)
                check(op != OP_CLOSE, f"slow client closed: {payload!r}")
                if not is_event(payload):
                    slow_data += 1
                quiet_since = None
                continue
            except (TimeoutError, OSError):
                pass
            fast.drain()
            m2 = await ascrape(relay.admin_port)
            if m2.value("fanout_queued_bytes") == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.5:
                    break
            if time.monotonic() > deadline:
                fail("the slow client's backlog did not drain within 60 s")
        fast.drain()
        delivered = m2.value("fanout_delivered_total") - base_delivered
        received = slow_data + sum(len(v) for v in fast.got.values()) - base_received
        # drop_oldest that cannot make room loses the new frame instead (counted as drop_newest).
        dropped = sum(m2.value("fanout_dropped_total", policy=p) for p in ("drop_oldest", "drop_newest", "conflate"))
        log(f"    phase 2: delivered {int(delivered)}, received {received} (slow client {slow_data}), "
            f"dropped {int(dropped)}")
        check(dropped > 0, "drops")
        check(delivered - received == dropped,
              f"delivered {delivered} - received {received} = {delivered - received} != dropped {dropped}")
        check(m2.value("fanout_slow_disconnects_total", reason="policy") == 0, "no disconnect under drop_oldest")
    await checks.arun("delivered - received == dropped_total: the counter accounts for what is missing",
                      drops_match_missing)

    async def route_switches():
        status, _, body = await asyncio.to_thread(http_get, relay.admin_port, "/metrics?x=1")
        check(status == 200 and b"fanout_published_total" in body, "the query string is ignored")
        for path in ("/metrics", "/", "/status.json", "/topics"):
            status, _, _ = await asyncio.to_thread(http_get, relay.port, path)
            check(status == 404, f"GET {path} on the client port answered {status}: it is the admin listener's")
    await checks.arun("/metrics with a query string", route_switches)

    slow.close_socket()
    await close_all(fast)
    rc = await relay.aterminate()
    check(rc == 0, f"relay exited with {rc}")

    async def switched_off():
        off = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS), "--route", ROUTE,
                                 "--listen", "127.0.0.1:0", "--stats-interval", 0, "--no-metrics",
                                 "--no-status-page"], name="relay-off")
        for path in ("/metrics", "/", "/status.json"):
            status, _, _ = await asyncio.to_thread(http_get, off.admin_port, path)
            check(status == 404, f"--no-metrics --no-status-page: GET {path} answered {status}, expected 404")
        rc = await off.aterminate()
        check(rc == 0, f"relay-off exited with {rc}")
    await checks.arun("--no-metrics and --no-status-page: 404", switched_off)

    async def bounded_topics():
        # Two topics by name, the rest summed as "(other)": memory stays bounded whatever comes.
        with tempfile.TemporaryDirectory(prefix="fanout-metrics-") as tmp:
            conf = write_file(tmp, "relay.toml", "[http]\nstatus_max_topics = 2\nstatus_history_s = 5\n")
            await sim.acommand("silent off")
            r = Relay(args.relay, ["--config", conf, "--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                                   "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 0],
                      name="relay-bounded")
            deadline = time.monotonic() + 30
            while True:
                m = await ascrape(r.admin_port)
                by_topic = {dict(k)["topic"]: v for k, v in m.series("fanout_relay_topic_messages_total").items()}
                if "(other)" in by_topic and len(by_topic) == 3:
                    break
                if time.monotonic() > deadline:
                    fail(f"per-topic series with status_max_topics = 2: {by_topic}")
                await asyncio.sleep(0.3)
            status, _, raw = await asyncio.to_thread(http_get, r.admin_port, "/status.json")
            doc = json.loads(raw)
            topics = [t["topic"] for t in doc["message_topics"]]
            check(len(topics) == 3 and topics[-1] == "(other)", f"status.json topics {topics}")
            check(doc["message_topics_tracked"] == 2, f"message_topics_tracked {doc['message_topics_tracked']}")
            log(f"    {by_topic}")
            rc = await r.aterminate()
            check(rc == 0, f"relay-bounded exited with {rc}")

            bad = [("metrics_path", '[http]\nmetrics_path = "metrics"\n', "http.metrics_path"),
                   ("max topics", "[http]\nstatus_max_topics = -1\n", "http.status_max_topics"),
                   ("history", "[http]\nstatus_history_s = 0\n", "http.status_history_s"),
                   ("type", '[http]\nmetrics = "yes"\n', "metrics")]
            for name, text, key in bad:
                path = write_file(tmp, f"bad-{name.replace(' ', '-')}.toml", text)
                rc, out, err = run_command([args.relay, "--check", "--config", path])
                check(rc == 2 and key in err, f"{text!r}: exit {rc}, expected 2 naming {key}; stderr {err!r}")
            # /metrics is the admin listener's: the client port may use the path, unless [admin]
            # public serves the admin routes there too.
            rc, out, err = run_command([args.relay, "--check", "--path", "/metrics"])
            check(rc == 0, f"--path /metrics (admin apart): exit {rc}; stderr {err!r}")
            token = write_file(tmp, "token", "0123456789abcdef0123\n")
            pub = write_file(tmp, "public.toml", "[admin]\npublic = true\n")
            rc, out, err = run_command([args.relay, "--check", "--config", pub, "--admin-token-file", token,
                                        "--path", "/metrics"])
            check(rc == 2 and "/metrics" in err, f"--path /metrics with admin.public: exit {rc}; stderr {err!r}")
    await checks.arun("status_max_topics bounds the per-topic series; bad [http] settings exit 2", bounded_topics)

    async def tls_listener():
        # A plain and a wss listener: series per listener; the only WebSocket client is on wss, so
        # every latency sample comes from a TLS write.
        with tempfile.TemporaryDirectory(prefix="fanout-metrics-tls-") as tmp:
            certs = make_certs(tmp)
            r = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS), "--route", ROUTE,
                                   "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0",
                                   "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                                   "--stats-interval", 0], name="relay-tls")
            _, line = await r.wait_line(r"serving wss://127\.0\.0\.1:(\d+)/ws", what="the wss listener")
            tls_port = int(line.split("wss://127.0.0.1:")[1].split("/")[0])
            c = await wss_client(tls_port, "/ws?subscribe=" + HOT, trusting_context(certs["ca"]), "wss-client")
            for _ in range(10):
                await c.next_data(20)
            plain, tls = f"127.0.0.1:{r.port}", f"127.0.0.1:{tls_port}"
            deadline = time.monotonic() + 20
            while True:
                m = await ascrape(r.admin_port)
                if m.get("fanout_websocket_connections", listener=tls) == 1 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.3)
            check(m.value("fanout_websocket_connections", listener=tls) == 1, "one wss connection")
            check(m.value("fanout_websocket_connections", listener=plain) == 0, "no plain WebSocket connection")
            n = m.value("fanout_publish_to_write_seconds_count", listener=tls)
            check(n >= 1, f"latency samples from TLS writes: {n}")
            log(f"    {int(n)} samples from wss writes")
            await c.close()
            rc = await r.aterminate()
            check(rc == 0, f"relay-tls exited with {rc}")
    await checks.arun("wss listener: per-listener series, latency sampled on TLS writes", tls_listener)
    checks.finish()


if __name__ == "__main__":
    run_relay_test("relay_metrics", body, timeout=150)

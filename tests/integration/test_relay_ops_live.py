#!/usr/bin/python3
"""fanout-relay operations while it runs: /readyz, drain, and SIGHUP reloads (a certificate above all).

  /usr/bin/python3 tests/integration/test_relay_ops_live.py --server build/tests/integration/fanout-test-server \\
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Checks: GET /readyz on the client and the admin listener answers 200 once the upstream is live, 503
{"reason":"no upstream live"} once fanout-feed-sim quit (while /healthz stays 200), and 200 again when
a new simulator comes up on the same port; on SIGTERM with drain_delay_ms (set through
FANOUT_SERVER_DRAIN_DELAY_MS) both answer 503 "draining" while /healthz still answers 200 and a client
stays connected, then the client gets 1012 (with retry_after_ms) and the relay exits 0. SIGHUP with a renewed certificate:
a wss client connected before stays connected and keeps receiving, a new client sees the new
certificate (its bytes, verified against the new CA) and a client trusting only the old CA is
refused; a certificate file that does not load is refused with a log line and the new certificate
stays; [log] level and [limits] changes apply at once (logged with their old and new values), and a
file with a syntax error keeps the configuration in use.
"""

import asyncio
import os
import signal
import ssl
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (HOST, ROUTE, Checks, FeedSim, Relay, Stream, check, check_open,  # noqa: E402
                           close_all, declare_args, http_get, log, relay_client, run_relay_test,
                           subscribe_msg, topic_of, wait_readyz, write_file)
from fanout_testlib import check_retry_advice  # noqa: E402
from test_tls import make_certs, trusting_context, wss_client, wss_open  # noqa: E402

STREAMS = [("tickers", "BTC-USDT")]
TOPICS = [topic_of(s) for s in STREAMS]


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-ops-live-") as tmp:
        await run(args, checks, tmp)
    checks.finish()


async def run(args, checks: Checks, tmp: str):
    async def readyz_upstream():
        sim = FeedSim(args.sim, rate=20, name="feed-sim-1")
        relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS),
                                   *declare_args(STREAMS), "--route", ROUTE, "--listen", f"{HOST}:0"],
                      name="relay-readyz")
        ports = [relay.port, relay.admin_port]
        try:
            await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
            await wait_readyz(ports, 200, None, "upstream live")
            port = sim.port
            await asyncio.to_thread(sim.quit)
            await relay.wait_line(Relay.down_re("upstream"), what="upstream down")
            await wait_readyz(ports, 503, "no upstream live", "upstream down")
            for p in ports:
                status, _ = await asyncio.to_thread(http_get, p, "/healthz")
                check(status == 200, f"/healthz on {p} while the upstream is down: {status}, expected 200")
            n = relay.line_count()
            sim2 = FeedSim(args.sim, port=port, rate=20, name="feed-sim-2")
            await relay.wait_line(Relay.live_re("upstream"), after=n, what="upstream live again")
            await wait_readyz(ports, 200, None, "upstream back")
            await asyncio.to_thread(sim2.quit)
        finally:
            check(await relay.aterminate() == 0, "relay-readyz: exit code")

    async def readyz_drain():
        env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
        env["FANOUT_SERVER_DRAIN_DELAY_MS"] = "3000"
        relay = Relay(args.relay, ["--listen", f"{HOST}:0"], name="relay-drain", env=env)
        ports = [relay.port, relay.admin_port]
        await relay.wait_line(Relay.live_re("simulator"), what="simulator live")
        await wait_readyz(ports, 200, None, "before SIGTERM")
        client = await relay_client(relay.port, ["tickers:BTC-USDT"], "client-drain")
        await client.count_each(2)
        relay.proc.send_signal(signal.SIGTERM)
        await wait_readyz(ports, 503, "draining", "after SIGTERM")
        status, _ = await asyncio.to_thread(http_get, relay.admin_port, "/healthz")
        check(status == 200, f"/healthz during the drain delay: {status}, expected 200")
        check(relay.alive(), "relay-drain exited before its drain delay")
        check_open(client, when="during the drain delay")
        await relay.wait_line(r"listeners close in 3000 ms", what="the drain delay's line")
        try:
            await asyncio.wait_for(client.client.closed.wait(), 20)
        except asyncio.TimeoutError:
            pass
        check(client.client.close_code == 1012, f"client after the drain: {client.client.describe_close()}")
        check_retry_advice("client after the drain", client.client.close_reason, "draining", 0, 5000)
        rc = await asyncio.to_thread(relay.proc.wait, 30)
        check(rc == 0, f"relay-drain: exit {rc}")
        await close_all(client)

    await checks.arun("/readyz 503 while the upstream is down, 200 once it is back; /healthz 200", readyz_upstream)
    await checks.arun("/readyz 503 'draining' on SIGTERM until the listeners close", readyz_drain)

    async def reload_certificate():
        for d in ("a", "b"):
            os.makedirs(os.path.join(tmp, d))
        a, b = make_certs(os.path.join(tmp, "a")), make_certs(os.path.join(tmp, "b"))
        live_cert, live_key = os.path.join(tmp, "live.pem"), os.path.join(tmp, "live.key")

        def install(cert: str, key: str):  # as a renewal does: each file replaced whole
            for src, dst in ((cert, live_cert), (key, live_key)):
                with open(src, "rb") as f:
                    data = f.read()
                with open(dst + ".tmp", "wb") as f:
                    f.write(data)
                os.replace(dst + ".tmp", dst)

        def config(level: str, queue: int) -> str:
            return write_file(tmp, "tls.toml", f"""\
[server]
listen = ["{HOST}:0"]
listen_tls = ["{HOST}:0"]
tls_cert = "{live_cert}"
tls_key = "{live_key}"
[limits]
max_queue_bytes = {queue}
[log]
level = "{level}"
""")

        def der(pem_file: str) -> bytes:
            with open(pem_file) as f:
                return ssl.PEM_cert_to_DER_cert(f.read())

        def peer(c: Stream) -> bytes:
            return c.client.ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)

        async def wss_stream(port: int, ca: str, name: str) -> Stream:
            c = await wss_client(port, "/ws", trusting_context(ca), name)
            await c.subscribe(*TOPICS)
            return Stream(c, TOPICS)

        install(a["cert"], a["key"])
        path = config("info", 1 << 20)
        relay = Relay(args.relay, ["--config", path], name="relay-reload")
        clients = []
        try:
            _, line = await relay.wait_line(r"serving wss://127\.0\.0\.1:(\d+)/", what="the wss listener")
            tls_port = int(line.split("wss://127.0.0.1:")[1].split("/")[0])
            old = await wss_stream(tls_port, a["ca"], "wss-before")
            clients.append(old)
            await old.count_each(2)
            check(peer(old) == der(a["cert"]), "the first client does not see certificate A")

            install(b["cert"], b["key"])
            n = relay.line_count()
            os.kill(relay.pid, signal.SIGHUP)
            _, line = await relay.wait_line(r"SIGHUP: configuration reloaded", after=n, what="the reload line")
            check("applied: TLS certificate" in line, f"reload line without the certificate: {line!r}")
            log(f"    {line}")
            new = await wss_stream(tls_port, b["ca"], "wss-after")
            clients.append(new)
            check(peer(new) == der(b["cert"]), "a client after SIGHUP does not see certificate B")
            await new.count_each(2)
            await old.more_each(3)  # the client from before the reload still gets the stream
            check_open(old, when="after the certificate reload")
            try:
                ws = await wss_open(tls_port, "/ws", trusting_context(a["ca"]))
                await ws.close()
                check(False, "a client trusting only the old CA connected after the reload")
            except ssl.SSLCertVerificationError as e:
                log(f"    old CA refused as expected: {e.verify_message}")

            # A certificate file that does not load: refused, the one in use stays.
            with open(live_cert, "w") as f:
                f.write("not a certificate\n")
            n = relay.line_count()
            os.kill(relay.pid, signal.SIGHUP)
            _, line = await relay.wait_line(r"SIGHUP: TLS certificate .* refused, keeping the ones in use", after=n,
                                            what="the refusal")
            log(f"    {line}")
            still = await wss_stream(tls_port, b["ca"], "wss-after-bad-file")
            clients.append(still)
            check(peer(still) == der(b["cert"]), "after a bad file the certificate in use changed")
            install(b["cert"], b["key"])

            # The log level and a limit apply now (test_relay_ops_reload.py has more); a broken file changes nothing.
            config("debug", 1 << 21)
            n = relay.line_count()
            os.kill(relay.pid, signal.SIGHUP)
            _, line = await relay.wait_line(r"SIGHUP: configuration reloaded", after=n, what="the reload line")
            check("log level info -> debug" in line and "max_queue_bytes 1048576 -> 2097152" in line,
                  f"reload line {line!r}")
            log(f"    {line}")
            write_file(tmp, "tls.toml", "[server\nlisten = 1\n")
            n = relay.line_count()
            os.kill(relay.pid, signal.SIGHUP)
            _, line = await relay.wait_line(r"SIGHUP: configuration refused, keeping the one in use", after=n,
                                            what="the refused file")
            log(f"    {line}")
            check_open(*clients, when="after four reloads")
            await old.more_each(2)
            relay.require_alive("after the reloads")
        finally:
            await close_all(*clients)
            check(await relay.aterminate() == 0, "relay-reload: exit code")

    await checks.arun("SIGHUP: a renewed certificate for new clients, old clients stay; log level; bad files",
                      reload_certificate)


if __name__ == "__main__":
    run_relay_test("relay_ops_live", body)

#!/usr/bin/python3
"""Hostile clients against fanout-relay: every byte a client causes is bounded, and connection
limits answer 503 + Retry-After (issue 13, F1 and F3; docs/security.md).

  /usr/bin/python3 tests/integration/test_hostile_bounds.py \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

A canary subscriber (hostile_testlib.Canary, from 127.0.0.1) watches every case: its seq stays
contiguous, its latency bounded, its connection open. Attackers connect from their own loopback
addresses (127.0.0.x), since the per-IP limits apply to them (exempt_loopback = false here).

Relay A (the per-client rate limits at their defaults):
  * control-op flood: {"op":"ping"} messages past the burst -> close 1008;
  * a WebSocket ping flood -> close 1008, relay RSS within the bound;
  * a slow reader (takes a trickle while much more queues) -> disconnected by write_timeout;
  * slowloris (one header byte every 0.3 s) -> closed at the request-head deadline;
  * a WebSocket without a subscription -> close 1008 at subscribe_timeout;
  * per-IP connections, X-Forwarded-For from a trusted proxy, the total limit -> 503, and the
    handshake rate per IP -> 429 (a rate limit), each with a Retry-After in [retry_after/2, retry_after].
Relay B (control-op and ping rates off: the queue bound alone; a PROXY-protocol proxy trusted):
  * PROXY v1 and v2 headers from the trusted proxy name the client the per-IP limit counts;
  * the F1 amplification (unsubscribe lists of bogus names, never reading) and a ping flood,
    never reading: the relay's RSS stays within a bound, the attacker is cut off (1008 or
    write_timeout), and RSS returns near the baseline after it leaves.
"""

import asyncio
import json
import os
import re
import socket
import ssl
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (OP_CLOSE, OP_PING, RawWS, build_frame, check, handshake_request,  # noqa: E402
                            HttpResponse, log, make_key, parse_close, recv_until_closed)
from hostile_testlib import CANARY_STREAMS, Canary, check_rss, rss_kib  # noqa: E402
from test_tls import make_certs, trusting_context  # noqa: E402
from relay_testlib import (ROUTE, Checks, FeedSim, Relay, declare_args, run_relay_test,  # noqa: E402
                           subscribe_msg, topic_of, write_file)

BULK_STREAMS = [("trades", "ETH-USDT")]
BULK_TOPIC = topic_of(BULK_STREAMS[0])
HEAD_TIMEOUT_MS = 1500
SUBSCRIBE_TIMEOUT_MS = 1500
WRITE_TIMEOUT_MS = 2000
PER_IP = 4
RETRY_AFTER_MS = 6000
MAX_CONNECTIONS = 40
# Documented in docs/security.md: an abusive connection holds at most its queue (max_queue_bytes
# + control_reserve_bytes) and one inbound message; the relay's RSS may grow by a few MiB more
# (allocator slack, the kernel's socket buffers are not in RSS). 32 MiB is far below the GBs of F1.
RSS_GROWTH_BOUND_KIB = 32 * 1024
RSS_AFTER_BOUND_KIB = 16 * 1024  # after the attacker left, RSS is within this of the baseline

CONFIG_A = f"""
[server]
handshake_timeout_ms = {HEAD_TIMEOUT_MS}
max_connections = {MAX_CONNECTIONS}
max_connections_per_ip = {PER_IP}
handshakes_per_second_per_ip = 2
handshake_burst_per_ip = 8
exempt_loopback = false
trusted_proxies = ["127.0.0.200"]
retry_after_ms = {RETRY_AFTER_MS}

[limits]
write_timeout_ms = {WRITE_TIMEOUT_MS}
subscribe_timeout_ms = {SUBSCRIBE_TIMEOUT_MS}
"""

CONFIG_C = f"""
[server]
exempt_loopback = false

[limits]
write_timeout_ms = {WRITE_TIMEOUT_MS}
control_ops_per_second = 0
pings_per_second = 0
"""

CONFIG_B = f"""
[server]
exempt_loopback = false
max_connections_per_ip = 2
trusted_proxies = ["127.0.0.200"]
proxy_protocol = true
retry_after_ms = {RETRY_AFTER_MS}

[limits]
write_timeout_ms = {WRITE_TIMEOUT_MS}
control_ops_per_second = 0
pings_per_second = 0
"""


# ---------------------------------------------------------------------------------------------
# raw clients (blocking; run in threads so the canary keeps receiving)

def connect(port: int, source: str, timeout: float = 5, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def request(port: int, source: str, path: str = "/ws", extra=(), upgrade: bool = True) -> HttpResponse:
    """One request head; returns the response head (the connection is closed after)."""
    s = connect(port, source)
    try:
        if upgrade:
            s.sendall(handshake_request(path=path, key=make_key(), extra=list(extra)))
        else:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data, ended = recv_until_closed(s, 5, b"\r\n\r\n")
        return HttpResponse(data, ended)
    finally:
        s.close()


def metrics(port: int) -> str:
    """GET /metrics from an address no limit test uses."""
    s = connect(port, "127.0.0.250")
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data, _ = recv_until_closed(s, 5)
        return data.decode(errors="replace")
    finally:
        s.close()


def metric(port: int, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pat = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.M)
    total = 0.0
    for m in pat.finditer(metrics(port)):
        if want and want not in (m.group(1) or ""):
            continue
        total += float(m.group(2))
    return total


def check_503(r: HttpResponse, what: str, status: int = 503):
    """A refusal with a jittered Retry-After: 503 for capacity limits, 429 for the handshake rate."""
    check(r.status == status, f"{what}: expected {status}, got {r!r}")
    ra = r.headers.get("retry-after", "")
    check(ra.isdigit(), f"{what}: {status} without a numeric Retry-After: {r!r}")
    lo, hi = max(1, RETRY_AFTER_MS // 2000), RETRY_AFTER_MS // 1000
    check(lo <= int(ra) <= hi, f"{what}: Retry-After {ra} outside [{lo}, {hi}]")
    return int(ra)


def flood(sock: socket.socket, chunk: bytes, seconds: float) -> tuple[int, str]:
    """Sends chunk repeatedly for `seconds`, never reading. Returns (bytes sent, how it ended):
    'time' (still accepted after the time), 'blocked' (the relay stopped reading: our send timed
    out) or the error when the relay closed."""
    sent = 0
    deadline = time.monotonic() + seconds
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            sock.sendall(chunk)
            sent += len(chunk)
        except socket.timeout:
            return sent, "blocked"
        except OSError as e:
            return sent, f"closed ({e.__class__.__name__})"
    return sent, "time"


def close_code_or_end(ws: RawWS, timeout: float) -> str:
    """Reads (without answering) until a close frame or the end: 'close CODE reason' or how it ended."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        try:
            _, op, payload = ws.recv_frame(max(0.01, left))
        except socket.timeout:
            return "timeout"
        except Exception as e:  # ConnectionEnded, reset
            return f"ended ({getattr(e, 'how', e)})"
        if op == OP_CLOSE:
            code, reason = parse_close(payload)
            return f"close {code} {reason.decode(errors='replace')}"


# ---------------------------------------------------------------------------------------------

async def start(args, config: str, tmp: str, name: str, extra=()):
    # 16 KB messages at 100/s per stream (~1.6 MB/s): enough to fill a slow reader's kernel buffers
    # (up to 4 MiB on Linux) and then its queue within seconds.
    sim = FeedSim(args.sim, rate=100, args=["--size", "16000"], name=f"sim-{name}")
    relay = Relay(args.relay, ["--upstream", sim.url, "--subscribe", subscribe_msg(CANARY_STREAMS + BULK_STREAMS), *declare_args(CANARY_STREAMS + BULK_STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0",
                               "--config", write_file(tmp, f"{name}.toml", config), *extra], name=f"relay-{name}")
    await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    await sim.wait_stats(lambda st: st["subscriptions"] == 2, "the relay subscribed")
    return sim, relay


async def body(args):
    checks = Checks()
    tmp = tempfile.mkdtemp(prefix="fanout-hostile-")
    sim, relay = await start(args, CONFIG_A, tmp, "a")
    port = relay.port
    admin = relay.admin_port  # /metrics is on the admin listener
    canary = await Canary.open(port)
    await canary.check(what="at start")

    async def control_flood():
        mark = canary.mark()
        ws = await asyncio.to_thread(RawWS, port, "/ws?subscribe=" + BULK_TOPIC, 5, None, "127.0.0.2")
        msg = build_frame(1, b'{"op":"ping"}')
        sent, how = await asyncio.to_thread(flood, ws.sock, msg * 50, 3)
        log(f"    sent {sent} bytes of {{\"op\":\"ping\"}} ({how})")
        got = await asyncio.to_thread(close_code_or_end, ws, 5)
        ws.close_socket()
        check(got.startswith("close 1008"), f"control-op flood: expected close 1008, got {got}")
        check(metric(admin, "fanout_policy_closes_total", reason="rate_limit") >= 1, "rate_limit not counted")
        await canary.check(since=mark, what="after the control-op flood")

    async def ping_flood():
        mark = canary.mark()
        base = rss_kib(relay.pid)
        ws = await asyncio.to_thread(RawWS, port, "/ws?subscribe=" + BULK_TOPIC, 5, 4096, "127.0.0.3")
        sent, how = await asyncio.to_thread(flood, ws.sock, build_frame(OP_PING, b"x" * 100) * 200, 3)
        peak = rss_kib(relay.pid)
        log(f"    sent {sent} bytes of pings ({how}); RSS {base} -> {peak} KiB")
        got = await asyncio.to_thread(close_code_or_end, ws, 5)
        ws.close_socket()
        check(got.startswith("close 1008") or got.startswith("ended"), f"ping flood: expected 1008, got {got}")
        check_rss(peak - base < RSS_GROWTH_BOUND_KIB, f"ping flood: RSS grew {peak - base} KiB")
        await canary.check(since=mark, what="after the ping flood")

    async def slow_reader():
        # Takes 2 KiB every 0.2 s (~10 KiB/s) of a ~1.6 MB/s topic: every read is progress for the
        # socket, but the queue never drains; write_timeout must still cut it off.
        mark = canary.mark()
        ws = await asyncio.to_thread(RawWS, port, "/ws?subscribe=" + BULK_TOPIC, 5, 4096, "127.0.0.4")

        def trickle():
            t0 = time.monotonic()
            got = 0
            while time.monotonic() - t0 < 15:
                try:
                    ws.sock.settimeout(1)
                    chunk = ws.sock.recv(2048)
                except socket.timeout:
                    continue
                except OSError as e:
                    return got, time.monotonic() - t0, f"reset ({e.__class__.__name__})"
                if not chunk:
                    return got, time.monotonic() - t0, "eof"
                got += len(chunk)
                time.sleep(0.2)
            return got, time.monotonic() - t0, "still open"
        got, secs, how = await asyncio.to_thread(trickle)
        ws.close_socket()
        log(f"    slow reader took {got} bytes in {secs:.1f} s, then {how}")
        check(how != "still open", "a slow reader taking a trickle was not disconnected within 15 s")
        check(got > 20 * 2048, f"the slow reader made progress for a while only ({got} bytes)")
        check(metric(admin, "fanout_slow_disconnects_total", reason="write_timeout") >= 1, "write_timeout not counted")
        await canary.check(since=mark, what="after the slow reader")

    async def slowloris():
        def drip():
            s = connect(port, "127.0.0.5")
            head = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
            t0 = time.monotonic()
            sent = 0
            try:
                for b in head:  # one byte every 0.3 s: each within the old per-byte timeout
                    s.sendall(bytes([b]))
                    sent += 1
                    s.settimeout(0.3)
                    try:
                        if s.recv(1024) == b"":
                            return sent, time.monotonic() - t0, "eof"
                    except socket.timeout:
                        pass
                return sent, time.monotonic() - t0, "still open"
            except OSError as e:
                return sent, time.monotonic() - t0, f"reset ({e.__class__.__name__})"
            finally:
                s.close()
        sent, secs, how = await asyncio.to_thread(drip)
        log(f"    slowloris sent {sent} bytes over {secs:.1f} s, then {how}")
        check(how != "still open", "slowloris kept its connection for 60 s")
        check(secs < 10 * HEAD_TIMEOUT_MS / 1000, f"slowloris held {secs:.1f} s (head deadline {HEAD_TIMEOUT_MS} ms)")
        check(metric(admin, "fanout_head_timeouts_total") >= 1, "head timeout not counted")

    async def no_subscription():
        ws = await asyncio.to_thread(RawWS, port, "/ws", 5, None, "127.0.0.6")
        got = await asyncio.to_thread(close_code_or_end, ws, 10)
        ws.close_socket()
        check(got.startswith("close 1008"), f"no subscription: expected close 1008, got {got}")
        check(metric(admin, "fanout_policy_closes_total", reason="no_subscription") >= 1, "not counted")

    async def per_ip():
        src = "127.0.0.7"
        held = [await asyncio.to_thread(RawWS, port, "/ws?subscribe=" + BULK_TOPIC, 5, 1 << 20, src)
                for _ in range(PER_IP)]
        r = await asyncio.to_thread(request, port, src)
        check_503(r, f"connection {PER_IP + 1} from {src}")
        r = await asyncio.to_thread(request, port, "127.0.0.8")
        check(r.status == 101, f"another IP must still get in: {r!r}")
        for ws in held:
            ws.close_socket()
        check(metric(admin, "fanout_connections_refused_total", limit="per_ip") >= 1, "per_ip not counted")
        # A trusted proxy (127.0.0.200) speaks for its clients: the limit applies to each of them.
        proxied = []
        for _ in range(PER_IP):
            s = connect(port, "127.0.0.200")
            s.sendall(handshake_request(path="/ws?subscribe=" + BULK_TOPIC, key=make_key(),
                                        extra=[("X-Forwarded-For", "203.0.113.50")]))
            r = HttpResponse(*recv_until_closed(s, 5, b"\r\n\r\n"))
            check(r.status == 101, f"proxied client {len(proxied) + 1}: {r!r}")
            proxied.append(s)
        r = await asyncio.to_thread(request, port, "127.0.0.200", "/ws", [("X-Forwarded-For", "203.0.113.50")])
        check_503(r, "a fifth connection of 203.0.113.50 through the trusted proxy")
        r = await asyncio.to_thread(request, port, "127.0.0.200", "/ws",
                                    [("X-Forwarded-For", "203.0.113.50, 203.0.113.51")])
        check(r.status == 101, f"the proxy's other client 203.0.113.51 must get in: {r!r}")
        # An untrusted peer's X-Forwarded-For is ignored: 127.0.0.7 is not 203.0.113.99.
        for s in proxied:
            s.close()

    async def handshake_rate():
        src = "127.0.0.9"
        statuses = []
        for _ in range(30):  # burst 8 at 2/s: quickly refused
            r = await asyncio.to_thread(request, port, src, "/healthz", (), False)
            statuses.append(r.status)
            if r.status == 429:  # a rate limit, not capacity: 429 Too Many Requests
                check_503(r, f"handshake {len(statuses)} from {src}", 429)
                break
        log(f"    statuses: {statuses}")
        check(429 in statuses, f"30 quick handshakes from one IP never refused with 429: {statuses}")
        check(metric(admin, "fanout_connections_refused_total", limit="handshake_rate") >= 1, "not counted")

    async def total():
        held = []
        refused = None
        for i in range(MAX_CONNECTIONS + 20):
            s = connect(port, f"127.0.1.{i + 1}")
            s.sendall(handshake_request(path="/ws?subscribe=" + BULK_TOPIC, key=make_key()))
            r = HttpResponse(*recv_until_closed(s, 5, b"\r\n\r\n"))
            held.append(s)
            if r.status != 101:
                refused = r
                break
        log(f"    refused after {len(held)} connections")
        check(refused is not None, f"{len(held)} connections, none refused (max_connections {MAX_CONNECTIONS})")
        check_503(refused, "past max_connections")
        for s in held:
            s.close()
        check(metric(admin, "fanout_connections_refused_total", limit="total") >= 1, "total not counted")

    for name, fn in [("control-op flood: close 1008", control_flood),
                     ("ping flood: close 1008, RSS bounded", ping_flood),
                     ("slow reader taking a trickle: cut off by write_timeout", slow_reader),
                     ("slowloris: closed at the request-head deadline", slowloris),
                     ("no subscription: close 1008 at subscribe_timeout", no_subscription),
                     ("per-IP connections (direct and through a trusted proxy): 503 + Retry-After", per_ip),
                     ("handshakes per second per IP: 429 + Retry-After", handshake_rate),
                     ("total connections: 503 + Retry-After", total)]:
        await checks.arun(name, fn)
    await checks.arun("canary unharmed by all of it", lambda: canary.check(what="at the end of relay A"))
    await canary.close()
    relay.terminate()
    sim.quit()

    # ---- relay B: rates off, the queue bound alone
    sim, relay = await start(args, CONFIG_B, tmp, "b")
    port = relay.port
    admin = relay.admin_port  # /metrics is on the admin listener
    canary = await Canary.open(port)
    await canary.check(what="at start (relay B)")
    await asyncio.sleep(0.5)
    baseline = rss_kib(relay.pid)

    async def amplification(what: str, source: str, chunk: bytes):
        mark = canary.mark()
        ws = await asyncio.to_thread(RawWS, port, "/ws?subscribe=" + BULK_TOPIC, 5, 4096, source)
        peak = [rss_kib(relay.pid)]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(relay.pid))
                time.sleep(0.05)
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            sent, how = await asyncio.to_thread(flood, ws.sock, chunk, 4)
            # Still not reading: the relay must cut it off (1008 on its replies, or write_timeout).
            # Only then read, briefly: a connection it closed ends at once (reset or EOF), one it
            # kept streams the bulk topic until the time is up.
            await asyncio.sleep(WRITE_TIMEOUT_MS / 1000 + 1.5)
            ended = await asyncio.to_thread(ws.wait_eof, 3)
        finally:
            stop.set()
            sampler.join()
        ws.close_socket()
        log(f"    {what}: sent {sent} bytes ({how}), then {ended}; RSS baseline {baseline} KiB, "
            f"peak {peak[0]} KiB (+{peak[0] - baseline})")
        check(ended in ("eof", "reset"), f"{what}: the relay did not cut the attacker off ({ended})")
        check_rss(peak[0] - baseline < RSS_GROWTH_BOUND_KIB,
              f"{what}: RSS grew {peak[0] - baseline} KiB (bound {RSS_GROWTH_BOUND_KIB})")
        after = peak[0]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            after = rss_kib(relay.pid)
            if after - baseline < RSS_AFTER_BOUND_KIB:
                break
            await asyncio.sleep(0.25)
        log(f"    {what}: RSS after the attacker left {after} KiB")
        check_rss(after - baseline < RSS_AFTER_BOUND_KIB, f"{what}: RSS stayed {after - baseline} KiB above the baseline")
        await canary.check(since=mark, what=f"after {what}")

    names = '"n",' * 4000
    unsub = build_frame(1, ('{"op":"unsubscribe","args":[' + names + '"n"]}').encode())
    await checks.arun("F1 amplification (unsubscribe lists, not reading): RSS bounded and returned",
                      amplification, "unsubscribe amplification", "127.0.0.20", unsub)
    await checks.arun("ping flood, not reading: RSS bounded and returned",
                      amplification, "ping flood", "127.0.0.21", build_frame(OP_PING, b"p" * 125) * 100)

    async def proxy_protocol():
        def via_proxy(header: bytes, req: bytes | None = None):
            s = connect(port, "127.0.0.200")
            s.sendall(header + (req or handshake_request(path="/ws?subscribe=" + BULK_TOPIC, key=make_key())))
            return s, HttpResponse(*recv_until_closed(s, 5, b"\r\n\r\n"))
        v2 = (bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 12])
              + bytes([198, 51, 100, 7, 127, 0, 0, 1, 0x15, 0xB3, 0, 80]))
        held = []
        for header in (b"PROXY TCP4 198.51.100.7 127.0.0.1 5555 80\r\n", v2):  # the same client, twice
            s, r = await asyncio.to_thread(via_proxy, header)
            check(r.status == 101, f"through the PROXY header {header[:20]!r}: {r!r}")
            held.append(s)
        s, r = await asyncio.to_thread(via_proxy, b"PROXY TCP4 198.51.100.7 127.0.0.1 5556 80\r\n")
        s.close()
        check_503(r, "a third connection of 198.51.100.7 (max_connections_per_ip 2) through the proxy")
        s, r = await asyncio.to_thread(via_proxy, b"PROXY TCP4 198.51.100.8 127.0.0.1 5557 80\r\n")
        check(r.status == 101, f"another client through the proxy: {r!r}")
        held.append(s)
        s, r = await asyncio.to_thread(via_proxy, b"PROXY UNKNOWN\r\n",
                                       b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.close()
        check(r.status == 200, f"the proxy's own health check (PROXY UNKNOWN): {r!r}")
        s, r = await asyncio.to_thread(via_proxy, b"GET-no-proxy-header ")
        s.close()
        check(r.status == 400, f"the trusted proxy without a PROXY header: {r!r}")
        for s in held:
            s.close()

    await checks.arun("PROXY protocol v1/v2 from a trusted proxy: per-IP limit of the named client", proxy_protocol)
    st = {k: metric(admin, "fanout_policy_closes_total", reason=k) for k in ("reply_overflow", "rate_limit")}
    log(f"    relay B: policy closes {st}, read pauses {metric(admin, 'fanout_read_pauses_total')}, "
        f"write timeouts {metric(admin, 'fanout_slow_disconnects_total', reason='write_timeout')}")
    check(st["rate_limit"] == 0, "relay B has no rate limits, yet something was rate-limited")
    await checks.arun("canary unharmed (relay B)", lambda: canary.check(what="at the end of relay B"))
    await canary.close()
    relay.terminate()
    sim.quit()

    # ---- relay C: the same over wss (the TLS session pauses reading and times out the same way)
    certs = make_certs(tmp)
    sim, relay = await start(args, CONFIG_C, tmp, "c", ["--listen-tls", "127.0.0.1:0", "--tls-cert", certs["cert"],
                                                        "--tls-key", certs["key"]])
    _, line = await relay.wait_line(r"serving wss://127\.0\.0\.1:(\d+)", what="the wss listener")
    tls_port = int(re.search(r"serving wss://127\.0\.0\.1:(\d+)", line).group(1))
    canary = await Canary.open(relay.port)
    await canary.check(what="at start (relay C)")
    baseline = rss_kib(relay.pid)

    async def tls_ping_flood():
        mark = canary.mark()

        def attack():
            raw = connect(tls_port, "127.0.0.22", rcvbuf=4096)
            s = trusting_context(certs["ca"]).wrap_socket(raw, server_hostname="127.0.0.1")
            key = make_key()
            s.sendall(handshake_request(path="/ws?subscribe=" + BULK_TOPIC, key=key))
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            check(b" 101 " in head.split(b"\r\n")[0], f"wss handshake: {head[:80]!r}")
            sent, how = flood(s, build_frame(OP_PING, b"p" * 125) * 100, 4)
            time.sleep(WRITE_TIMEOUT_MS / 1000 + 1.5)
            s.settimeout(3)
            t0 = time.monotonic()
            ended = "timeout"
            try:
                while time.monotonic() - t0 < 3:
                    if not s.recv(65536):
                        ended = "eof"
                        break
            except (OSError, ssl.SSLError) as e:
                ended = f"reset ({e.__class__.__name__})"
            s.close()
            return sent, how, ended
        sent, how, ended = await asyncio.to_thread(attack)
        peak = rss_kib(relay.pid)
        log(f"    wss ping flood: sent {sent} bytes ({how}), then {ended}; RSS {baseline} -> {peak} KiB")
        check(ended != "timeout", "wss ping flood: the relay did not cut the attacker off")
        check_rss(peak - baseline < RSS_GROWTH_BOUND_KIB, f"wss ping flood: RSS grew {peak - baseline} KiB")
        await canary.check(since=mark, what="after the wss ping flood")

    await checks.arun("ping flood over wss, not reading: cut off, RSS bounded", tls_ping_flood)
    await canary.close()
    checks.finish()


if __name__ == "__main__":
    run_relay_test("hostile_bounds", body, timeout=120)

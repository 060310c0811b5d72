#!/usr/bin/python3
"""fanout's own TLS 1.3 record layer (Server::Tls::own_records, detail/tls13_records.hpp) against
independent TLS implementations over real sockets.

  /usr/bin/python3 tests/integration/test_tls_records.py --server build/tests/integration/fanout-test-server

Certificates as in test_tls.py (a throwaway CA, server certificate for 127.0.0.1). Checks:
* stats `tls_own_records` grows by one per TLS 1.3 connection (wss and plain HTTPS alike); TLS 1.3
  wss clients get messages byte-exact, some over 16 KiB (a frame spanning records).
* a TLS 1.2 client (Python ssl, maximum_version TLSv1_2) subscribes and gets the same bytes, and
  `tls_own_records` does not grow: TLS 1.2 stays with OpenSSL.
* TLS 1.3 session resumption (the session from a first connection, after its tickets were read):
  the second handshake is resumed and GET /healthz and a WebSocket exchange over it are correct.
  The server's session tickets are records sealed before the hand-over; a wrong write sequence
  number would show here as the client's decryption failure.
* hostile records after the handshake, written raw on the socket of a handshake done with
  ssl.MemoryBIO + SSLObject. Python's OpenSSL then reads the server's reply and reports the alert
  it received (SSLV3_ALERT_*): random ciphertext -> bad_record_mac; a header announcing 20,000
  bytes -> record_overflow; unprotected alert (21) and handshake (22) records ->
  unexpected_message. Each time `tls_record_errors` grows by one, the connection ends, the server
  lives, and a canary wss client keeps getting data.
* valid records in odd shapes: a 30 KB message in two records sent a byte at a time around the
  headers, 300 records in one send; the client's close_notify; a bad record behind a blocked write.
* records the test seals itself (python3-cryptography's AEADs, keys from the client's key log;
  skipped with a note without it), for content no TLS library sends: padding, an empty record,
  KeyUpdate with and without update_requested (the server's answering KeyUpdate is seen on the
  wire, both directions go on under the next keys); and fatal: a client NewSessionTicket, no
  content type, content type 24 (unexpected_message), request_update 2 (illegal_parameter, RFC 8446
  §4.6.3), a KeyUpdate with more after it in its record (unexpected_message, §5.1), a KeyUpdate of
  the wrong length and a 3-byte alert (decode_error), 16,385 bytes (record_overflow), a replayed
  sequence number (bad_record_mac); an encrypted close_notify closes without an error counted.
  A KeyUpdate asking for the server's while the server's write is blocked: its answer goes out
  after the held-back records and before later ones (160 messages and a pong read in order).
* a partial record and then nothing is ended by the existing timers: before the request head by
  handshake_timeout, after the upgrade by subscribe_timeout (close 1008, readable: the server's
  direction is intact), after a subscription by idle_timeout.
* 1,000 connections each holding half a record: the server's RSS grows by less than
  1,000 x 17 KiB (the partial-record buffer is bounded per connection), and its heap is back to
  where it was once they close.
* headless Chromium (BoringSSL) over wss with --ignore-certificate-errors: subscribes, gets
  messages byte-exact (some over 16 KiB), sends {"op":"ping"} and gets the pong; `tls_own_records`
  grew. Skipped with a note where /usr/bin/chromium is missing.
* node's own WebSocket (undici, node/wss_client.js; `--experimental-websocket` on node 20) over
  node's TLS, trusting the test CA: the same. Skipped with a note where node has no WebSocket.
"""

import asyncio
import hmac
import json
import os
import random
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (HOST, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Checks,  # noqa: E402
                            HttpResponse, Server, TestFailure, accept_for, build_frame, check,
                            check_payload, collect_topic_data, fail, handshake_request, kill_child, log,
                            make_key, parse_close, run_test, spawn, tcp_connect)
from browser_testlib import CHROMIUM, PageServer, headless_chromium  # noqa: E402
from test_tls import in_temp_dir, make_certs, trusting_context, wss_client  # noqa: E402

NODE_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node", "wss_client.js")
# Under ASan/TSan memory figures mean little: the 1,000 half records' bounds are logged, not asserted.
SANITIZED = os.environ.get("TEST_UNDER_SANITIZER") == "1"
# Message sizes: small ones share a record, 20,000 and 70,000 bytes span two and five.
SIZES = [300, 20000, 300, 70000, 1000]

# Alert descriptions (RFC 8446 §6) as Python's OpenSSL names a received alert.
ALERT_REASONS = {
    "bad_record_mac": "SSLV3_ALERT_BAD_RECORD_MAC",
    "decode_error": "TLSV1_ALERT_DECODE_ERROR",
    "illegal_parameter": "SSLV3_ALERT_ILLEGAL_PARAMETER",
    "record_overflow": "TLSV1_ALERT_RECORD_OVERFLOW",
    "unexpected_message": "SSLV3_ALERT_UNEXPECTED_MESSAGE",
}


def tls13_context(ca_file: str) -> ssl.SSLContext:
    ctx = trusting_context(ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def tls12_context(ca_file: str) -> ssl.SSLContext:
    ctx = trusting_context(ca_file)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# ----------------------------------------------------------------------------------------------
# A TLS client whose socket the test may also write raw bytes to

class RawTls:
    """TLS over a plain blocking socket through ssl.MemoryBIO + SSLObject: the handshake and the
    records are Python's OpenSSL, and send_raw() puts bytes on the wire behind its back."""

    def __init__(self, port: int, ctx: ssl.SSLContext, timeout: float = 10, session=None):
        self.sock = tcp_connect(port, timeout=timeout)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=HOST, session=session)
        self.plain = bytearray()  # application data read but not yet taken
        self.raw_in = bytearray()
        self.record_lengths: list[int] = []  # bodies of the server's records, in order
        self.ended = ""  # how the socket ended, once it did (_feed)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed(deadline):
                    fail(f"TLS handshake: connection ended ({self.ended})")
        self._flush()

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _feed(self, deadline: float) -> bool:
        """One recv into the SSLObject; False at EOF/reset/timeout (why in self.ended)."""
        left = deadline - time.monotonic()
        if left <= 0:
            self.ended = "timeout"
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            self.ended = "timeout"
            return False
        except ConnectionResetError:
            self.ended = "reset"
            self.incoming.write_eof()
            return False
        if not chunk:
            self.ended = "eof"
            self.incoming.write_eof()
            return False
        self.incoming.write(chunk)
        self._note_records(chunk)
        return True

    def _note_records(self, chunk: bytes):
        """Keeps the body length of every record the server sent (KeyUpdates show as 22 bytes)."""
        self.raw_in += chunk
        while len(self.raw_in) >= 5:
            n = struct.unpack_from("!H", self.raw_in, 3)[0]
            if len(self.raw_in) < 5 + n:
                break
            self.record_lengths.append(n)
            del self.raw_in[:5 + n]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_plain(self, data: bytes):
        self.obj.write(data)
        self._flush()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def _pump(self, deadline: float) -> str | None:
        """Decrypt what arrived into self.plain; None while the connection is open, else how it
        ended: 'alert <REASON>', 'close_notify', 'eof', 'reset', 'timeout', 'ssl <error>'."""
        while True:
            try:
                data = self.obj.read(65536)
            except ssl.SSLWantReadError:
                self._flush()  # e.g. nothing, but keep the SSLObject's output moving
                if not self._feed(deadline):
                    if self.ended == "timeout":
                        return "timeout"
                    continue  # EOF written: the next read says how the stream ended
                continue
            except ssl.SSLZeroReturnError:
                return "close_notify"
            except ssl.SSLEOFError:
                return self.ended or "eof"
            except ssl.SSLError as e:
                if "ALERT" in (e.reason or ""):
                    return f"alert {e.reason}"
                return f"ssl {e.reason or e}"
            if not data:
                return self.ended or "eof"
            self.plain += data
            return None

    def wait_ticket(self, timeout: float = 10):
        """Read until a resumable session arrived (the server's NewSessionTickets, sent as its
        handshake ends: after them the server has handed the connection over)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.plain += self.obj.read(65536)  # takes the tickets in, if they arrived
                continue
            except ssl.SSLWantReadError:
                pass
            if self.obj.session is not None and self.obj.session.has_ticket:
                return
            check(self._feed(deadline), f"no session ticket within {timeout} s ({self.ended})")

    def wait_eof(self, timeout: float = 10) -> str:
        """Discard raw input until the peer closes: 'eof', 'reset' or 'timeout'."""
        deadline = time.monotonic() + timeout
        while self._feed(deadline):
            pass
        return self.ended

    def read_until(self, marker: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.plain:
            how = self._pump(deadline)
            if how is not None:
                fail(f"waiting for {marker!r}: connection ended ({how}); got {bytes(self.plain[:200])!r}")
        i = self.plain.index(marker) + len(marker)
        out = bytes(self.plain[:i])
        del self.plain[:i]
        return out

    def read_exact(self, n: int, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.plain) < n:
            how = self._pump(deadline)
            if how is not None:
                fail(f"waiting for {n} bytes: connection ended ({how}); got {len(self.plain)}")
        out = bytes(self.plain[:n])
        del self.plain[:n]
        return out

    def read_to_end(self, timeout: float = 10) -> str:
        """Take everything until the connection ends; returns how it ended (see _pump)."""
        deadline = time.monotonic() + timeout
        while True:
            how = self._pump(deadline)
            if how is not None:
                return how

    # -- WebSocket over the SSLObject

    def upgrade(self, path: str = "/ws"):
        key = make_key()
        self.send_plain(handshake_request(path=path, key=key))
        head = HttpResponse(self.read_until(b"\r\n\r\n"), "delimiter")
        check(head.status == 101 and head.headers.get("sec-websocket-accept") == accept_for(key),
              f"WebSocket upgrade over TLS: {head!r}")

    def recv_ws_frame(self, timeout: float = 10) -> tuple[int, bytes]:
        """The next server frame other than a ping or pong (the server pings every second)."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.001, deadline - time.monotonic())
            b0, b1 = self.read_exact(2, left)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self.read_exact(2, left))[0]
            elif n == 127:
                n = struct.unpack("!Q", self.read_exact(8, left))[0]
            payload = self.read_exact(n, left)
            if b0 & 0x0F not in (OP_PING, OP_PONG):
                return b0 & 0x0F, payload

    def sealed(self, data: bytes) -> bytes:
        """data as records Python's OpenSSL sealed (one per write, 16 KiB at most), not sent."""
        self.obj.write(data)
        return self.outgoing.read()


# ----------------------------------------------------------------------------------------------
# Client records sealed here (python3-cryptography's AEADs), for content no TLS library sends

class Sealer:
    """Seals the client's records of a RawTls connection itself, from the application traffic
    secret its context logged (SSLContext.keylog_filename): the client writes nothing through
    its SSLObject after the handshake, which keeps reading the server's records (a server
    KeyUpdate included). RFC 8446 §5.2, §5.3, §7.1-7.3."""

    SUITES = {  # cipher name -> (hash, key length, AEAD)
        "TLS_AES_128_GCM_SHA256": ("sha256", 16, "AESGCM"),
        "TLS_AES_256_GCM_SHA384": ("sha384", 32, "AESGCM"),
        "TLS_CHACHA20_POLY1305_SHA256": ("sha256", 32, "ChaCha20Poly1305"),
    }

    def __init__(self, conn: "RawTls", keylog: str):
        from cryptography.hazmat.primitives.ciphers import aead
        self.conn = conn
        self.suite = conn.obj.cipher()[0]
        self.hash, self.key_len, cipher = self.SUITES[self.suite]
        self.aead_class = getattr(aead, cipher)
        with open(keylog) as f:
            lines = [ln.split() for ln in f if ln.startswith("CLIENT_TRAFFIC_SECRET_0 ")]
        check(len(lines) == 1, f"key log {keylog}: {len(lines)} client traffic secrets")
        self.install(bytes.fromhex(lines[0][2]))

    def expand_label(self, secret: bytes, label: bytes, length: int) -> bytes:
        full = b"tls13 " + label
        info = struct.pack("!HB", length, len(full)) + full + b"\x00"
        out, t, i = b"", b"", 1
        while len(out) < length:
            t = hmac.new(secret, t + info + bytes([i]), self.hash).digest()
            out += t
            i += 1
        return out[:length]

    def install(self, secret: bytes):
        self.secret = secret
        self.aead = self.aead_class(self.expand_label(secret, b"key", self.key_len))
        self.iv = self.expand_label(secret, b"iv", 12)
        self.seq = 0

    def key_update(self):
        """After sending a KeyUpdate: the next traffic secret."""
        self.install(self.expand_label(self.secret, b"traffic upd", len(self.secret)))

    def seal(self, content: bytes, inner_type: int = 23, padding: int = 0, seq: int | None = None) -> bytes:
        inner = content + bytes([inner_type]) + bytes(padding) if inner_type else bytes(len(content) + padding)
        header = struct.pack("!BHH", 23, 0x0303, len(inner) + 16)
        n = self.seq if seq is None else seq
        nonce = bytes(a ^ b for a, b in zip(self.iv, n.to_bytes(12, "big")))
        if seq is None:
            self.seq += 1
        return header + self.aead.encrypt(nonce, inner, header)

    def send(self, content: bytes, **kw):
        self.conn.send_raw(self.seal(content, **kw))



def record(content_type: int, body: bytes, length: int | None = None) -> bytes:
    """A TLS record as it goes on the wire (legacy version 0x0303)."""
    return struct.pack("!BHH", content_type, 0x0303, len(body) if length is None else length) + body


def have_cryptography() -> bool:
    try:
        from cryptography.hazmat.primitives.ciphers import aead  # noqa: F401
        return True
    except ImportError:
        return False


def node_websocket_argv() -> list | None:
    """How to run node with a global WebSocket (built in from node 22, a flag on node 20), or None."""
    if not shutil.which("node"):
        return None
    for argv in (["node"], ["node", "--experimental-websocket"]):
        try:
            r = subprocess.run([*argv, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 3)"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if r.returncode == 0:
            return argv
    return None


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


# ----------------------------------------------------------------------------------------------
# Headless Chromium

PAGE = """<!doctype html><html><body><script>
const q = new URLSearchParams(location.search);
const want = Number(q.get("count"));
const result = {messages: []};
function post(path, body) { return fetch(path, {method: "POST", body: JSON.stringify(body)}); }
const ws = new WebSocket("wss://127.0.0.1:" + q.get("port") + "/ws");
ws.onopen = () => { ws.send(JSON.stringify({op: "subscribe", args: ["web"]})); };
ws.onmessage = (e) => {
  const d = e.data.startsWith('{"event"') ? JSON.parse(e.data) : {};
  if (d.event === "subscribe") { post("/ready", {}); return; }
  if (d.event === "pong") { result.pong = true; ws.close(); post("/result", result); return; }
  if (d.event) return;
  result.messages.push(e.data);
  if (result.messages.length === want) ws.send(JSON.stringify({op: "ping"}));
};
ws.onerror = () => { result.error = true; };
ws.onclose = (e) => { if (!result.pong) { result.close = e.code; post("/result", result); } };
setTimeout(() => { result.timeout = true; post("/result", result); }, 40000);
</script></body></html>"""




# ----------------------------------------------------------------------------------------------

async def body(args):
    await in_temp_dir(run, args)


async def run(args, tmp: str):
    certs = make_certs(tmp)
    ctx13 = tls13_context(certs["ca"])
    ctx12 = tls12_context(certs["ca"])
    # Short timers so the partial-record cases end within seconds; the canary (python websockets)
    # answers the 1 s pings, so idle_timeout never ends it. No deflate: large frames stay large and
    # span records.
    srv = Server(args.server, ["--shards", "2", "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                               "--deflate", 0, "--handshake-timeout-ms", 2000,
                               "--subscribe-timeout-ms", 2000, "--ping-interval-ms", 1000,
                               "--idle-timeout-ms", 3000])
    port = srv.port
    checks = Checks()
    published = {}  # topic -> last seq

    async def publish(topic: str, sizes) -> list:
        """Publishes one message per size; returns [(seq, size)]."""
        out = []
        for n in sizes:
            seq = await srv.apublish(topic, 1, n)
            check(seq == published.get(topic, 0) + 1, f"publish {topic}: seq {seq}")
            published[topic] = seq
            out.append((seq, n))
        return out

    async def own_records() -> int:
        return (await srv.astats())["tls_own_records"]

    # -- the canary: a TLS 1.3 wss client that must keep getting data through every hostile case
    canary = await wss_client(port, "/ws?subscribe=canary", ctx13, "canary(wss 1.3)")
    await srv.arequire_subscribers(1, 15000)

    async def canary_gets_data(what: str):
        check(srv.alive(), f"server died after {what}: " + srv.describe_death())
        expected = await publish("canary", [300, 20000])
        try:
            await collect_topic_data(canary, {"canary": expected}, 15)
        except TestFailure as e:
            fail(f"after {what}: canary: {e}")

    # -- 1. counting, TLS 1.2, resumption
    async def counts_tls13():
        before = await own_records()
        clients = [await wss_client(port, "/ws?subscribe=a", ctx13, f"w{i}(wss 1.3)") for i in range(3)]
        await srv.arequire_subscribers(4, 15000)
        for c in clients:
            v = c.ws.transport.get_extra_info("ssl_object").version()
            check(v == "TLSv1.3", f"{c.name}: negotiated {v}")
        after = await own_records()
        check(after - before == 3, f"tls_own_records grew {before} -> {after} for 3 TLS 1.3 clients")
        expected = await publish("a", SIZES)
        await asyncio.gather(*(collect_topic_data(c, {"a": expected}, 20) for c in clients))
        for c in clients:
            await c.close()
        log(f"tls_own_records {before} -> {after}; sizes {SIZES} byte-exact on 3 clients")
    await checks.arun("tls_own_records counts TLS 1.3 wss clients; they get frames over 16 KiB byte-exact",
                      counts_tls13)

    async def tls12_stays_with_openssl():
        before = await own_records()
        c = await wss_client(port, "/ws", ctx12, "c12(wss 1.2)")
        v = c.ws.transport.get_extra_info("ssl_object").version()
        check(v == "TLSv1.2", f"TLS 1.2 client negotiated {v}")
        await c.subscribe("b")
        expected = await publish("b", SIZES)
        await collect_topic_data(c, {"b": expected}, 20)
        await c.send_json({"op": "ping"})
        await c.expect_event("pong")
        after = await own_records()
        check(after == before, f"tls_own_records grew {before} -> {after} for a TLS 1.2 client")
        await c.close()
    await checks.arun("a TLS 1.2 client gets the same bytes; tls_own_records does not grow",
                      tls12_stays_with_openssl)

    def resumed(exchange: str):
        # First connection: read the response (and with it the session tickets).
        first = RawTls(port, ctx13)
        first.wait_ticket()
        session = first.obj.session
        first.send_plain(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        first.read_until(b"\r\n\r\n")
        first.close()
        check(session is not None and session.has_ticket, "first connection: no resumable session")
        second = RawTls(port, ctx13, session=session)
        try:
            check(second.obj.session_reused, "second connection: the session was not resumed")
            if exchange == "healthz":
                second.send_plain(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                data = bytearray(second.read_until(b"\r\n\r\n"))
                how = second.read_to_end()
                data += second.plain
                resp = HttpResponse(bytes(data), how)
                check(resp.status == 200, f"GET /healthz over a resumed session: {resp!r}")
                check(how in ("eof", "close_notify"), f"after /healthz with Connection: close: ended by {how}")
                return f"200, {len(resp.body)} body bytes, ended by {how}"
            second.upgrade("/ws")
            second.send_plain(build_frame(OP_TEXT, b'{"op":"ping"}'))
            op, payload = second.recv_ws_frame()
            check(op == OP_TEXT and b'"pong"' in payload, f"ping over a resumed session: {op} {payload!r}")
            # Server-to-client data as well, a frame spanning two records.
            second.send_plain(build_frame(OP_TEXT, b'{"op":"subscribe","args":["r"]}'))
            op, payload = second.recv_ws_frame()
            check(b'"subscribe"' in payload, f"subscribe ack: {payload!r}")
            seq = srv.publish("r", 1, 20000)
            op, payload = second.recv_ws_frame()
            check(op == OP_TEXT, f"data frame opcode {op}")
            check_payload(payload.decode(), "r", seq, 20000, "resumed")
            return "pong and a 20,000-byte message byte-exact"
        finally:
            second.close()

    for exchange in ("healthz", "websocket"):
        async def resumption(exchange=exchange):
            before = await own_records()
            what = await asyncio.to_thread(resumed, exchange)
            after = await own_records()
            check(after - before == 2, f"tls_own_records grew {before} -> {after} for 2 TLS 1.3 connections")
            log(f"resumed session, {exchange}: {what}")
        await checks.arun(f"TLS 1.3 session resumption with own records: {exchange} over the resumed connection",
                          resumption)

    # -- valid records in unusual shapes
    ping_30k = build_frame(OP_TEXT, b'{"op":"ping"}' + b" " * 30000)  # one message, two records

    def dribbled():
        c = RawTls(port, ctx13)
        try:
            c.upgrade("/ws")
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            wire = c.sealed(ping_30k)
            check(len(wire) > 30000 + 2 * 22, f"{len(wire)} bytes on the wire for a 30 KB message")
            # Bytes one at a time around both record headers (each its own segment: the pauses
            # let the server read them apart), the body in odd-sized chunks.
            second = 5 + 16384 + 17  # where Python's second record starts
            at, sends = 0, 0
            while at < len(wire):
                near_header = at < 12 or second - 3 <= at < second + 8
                k = 1 if near_header else random.choice((7, 100, 1500, 4099))
                c.send_raw(wire[at:at + k])
                at += k
                sends += 1
                if near_header:
                    time.sleep(0.003)
            op, payload = c.recv_ws_frame()
            check(op == OP_TEXT and b'"pong"' in payload, f"dribbled ping: {op} {payload[:100]!r}")
            return f"{len(wire)} bytes in {sends} sends"
        finally:
            c.close()

    async def dribbled_case():
        log(f"dribbled: {await asyncio.to_thread(dribbled)}")
    await checks.arun("a 30 KB message in two records, sent a byte at a time around the headers: answered",
                      dribbled_case)

    def many_records():
        c = RawTls(port, ctx13)
        try:
            c.upgrade("/ws")
            n = 300
            ping = build_frame(OP_TEXT, b'{"op":"ping"}' + b" " * 500)
            wire = b"".join(c.sealed(ping) for _ in range(n))  # 300 records, one send
            c.send_raw(wire)
            for i in range(n):
                op, payload = c.recv_ws_frame()
                check(op == OP_TEXT and b'"pong"' in payload, f"pong {i + 1} of {n}: {op} {payload[:100]!r}")
            return f"{n} records ({len(wire)} bytes) in one send, {n} pongs"
        finally:
            c.close()

    async def many_records_case():
        log(f"many records: {await asyncio.to_thread(many_records)}")
    await checks.arun("300 records in one send (across the server's read buffer): 300 pongs", many_records_case)

    def close_notify():
        c = RawTls(port, ctx13)
        try:
            c.upgrade("/ws?subscribe=cn")
            try:
                c.obj.unwrap()  # writes close_notify; the server's answer is not awaited
            except ssl.SSLWantReadError:
                pass
            c._flush()
            ended = c.wait_eof(10)
            check(ended in ("eof", "reset"), f"after the client's close_notify: {ended}")
        finally:
            c.close()

    async def close_notify_case():
        before = await srv.astats()
        await asyncio.to_thread(close_notify)
        deadline = time.monotonic() + 10
        while (st := await srv.astats())["sessions"] != 1:  # the canary's (earlier clients' ends may lag)
            check(time.monotonic() < deadline, f"10 s after close_notify: {st['sessions']} sessions, "
                                               f"expected 1 (the canary)")
            await asyncio.sleep(0.05)
        check(st["tls_record_errors"] == before["tls_record_errors"],
              f"close_notify counted as a record error: {before['tls_record_errors']} -> {st['tls_record_errors']}")
    await checks.arun("the client's close_notify ends the session, not counted as an error", close_notify_case)

    def blocked_then_hostile() -> RawTls:
        c = RawTls(port, ctx13)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.upgrade("/ws?subscribe=blk")
        # Publish what the client does not read until the server's write blocks: the kernel takes
        # megabytes first, and the queue keeps 1 MiB of each burst (drop_oldest).
        stalls = srv.stats()["write_stalls"]
        deadline = time.monotonic() + 30
        while srv.stats()["write_stalls"] <= stalls:
            check(time.monotonic() < deadline, "the server's write never blocked (write_stalls): test setup")
            srv.publish("blk", 20, 60000)
            time.sleep(0.05)
        c.send_raw(record(23, random.randbytes(64)))
        return c

    async def hostile_while_blocked_case():
        before = await srv.astats()
        c = await asyncio.to_thread(blocked_then_hostile)
        try:
            # The bad record waits behind the paused read until the client reads: drain the socket
            # (raw, a thread) while the server's counters say what it did. The bytes the kernel
            # already holds still arrive after the server closed (slowly, through a 4 KiB window):
            # the session's end is read from the stats, not from the client's EOF.
            stop = threading.Event()

            def drain():
                c.sock.settimeout(0.2)
                while not stop.is_set():
                    try:
                        if not c.sock.recv(65536):
                            return
                    except socket.timeout:
                        continue
                    except OSError:
                        return
            drainer = asyncio.ensure_future(asyncio.to_thread(drain))
            deadline = time.monotonic() + 15
            while True:
                st = await srv.astats()
                if st["tls_record_errors"] > before["tls_record_errors"] and st["sessions"] == 1:
                    break  # only the canary is left
                check(time.monotonic() < deadline,
                      f"15 s after a bad record behind a blocked write: tls_record_errors "
                      f"{before['tls_record_errors']} -> {st['tls_record_errors']}, sessions "
                      f"{st['sessions']}, expected 1 (the canary)")
                await asyncio.sleep(0.05)
            stop.set()
            await drainer
            check(st["tls_record_errors"] == before["tls_record_errors"] + 1,
                  f"tls_record_errors {before['tls_record_errors']} -> {st['tls_record_errors']}")
        finally:
            c.close()
        await canary_gets_data("a bad record behind a blocked write")
    await checks.arun("a bad record while the server's write is blocked: closed, counted", hostile_while_blocked_case)

    # -- 2. hostile records after the handshake
    def hostile(raw: bytes, alert: str, what: str):
        c = RawTls(port, ctx13)
        try:
            c.wait_ticket()  # the server handed the connection to its own records
            c.send_raw(raw)
            how = c.read_to_end(10)
            log(f"{what}: client saw {how}")
            check(how == f"alert {ALERT_REASONS[alert]}",
                  f"{what}: expected the server's {alert} alert, the client saw: {how}")
            # After its alert the server closes the connection.
            ended = c.wait_eof(10)
            check(ended in ("eof", "reset"), f"{what}: after the alert the connection stayed open ({ended})")
        finally:
            c.close()

    cases = [
        ("random ciphertext (bad tag)", record(23, random.randbytes(200)), "bad_record_mac"),
        ("a record shorter than a tag", record(23, b"\x01\x02\x03"), "bad_record_mac"),
        ("a header announcing 20,000 bytes", record(23, b"", 20000), "record_overflow"),
        ("an unprotected alert record (21)", record(21, b"\x01\x00"), "unexpected_message"),
        ("an unprotected handshake record (22)", record(22, b"\x18\x00\x00\x01\x00"), "unexpected_message"),
    ]
    for what, raw, alert in cases:
        async def case(what=what, raw=raw, alert=alert):
            before = (await srv.astats())["tls_record_errors"]
            await asyncio.to_thread(hostile, raw, alert, what)
            after = (await srv.astats())["tls_record_errors"]
            check(after == before + 1, f"{what}: tls_record_errors {before} -> {after}")
            await canary_gets_data(what)
        await checks.arun(f"hostile: {what} -> {alert} alert, connection closed, others served", case)

    # -- records sealed here: content no TLS library sends (python3-cryptography's AEADs)
    async def sealed_cases():
        KEY_UPDATE_BODY = 5 + 1 + 16  # a KeyUpdate record's body: message, content type, tag

        def sealed_conn(name: str):
            """A TLS 1.3 connection whose client records the test seals (Sealer), upgraded to WebSocket."""
            ctx = tls13_context(certs["ca"])
            keylog = os.path.join(tmp, f"keys-{name.replace(' ', '_')}-{random.getrandbits(32)}.log")
            ctx.keylog_filename = keylog
            c = RawTls(port, ctx)
            c.wait_ticket()
            sealer = Sealer(c, keylog)
            key = make_key()
            sealer.send(handshake_request(path="/ws", key=key))
            head = HttpResponse(c.read_until(b"\r\n\r\n"), "delimiter")
            check(head.status == 101 and head.headers.get("sec-websocket-accept") == accept_for(key),
                  f"{name}: upgrade with records sealed here: {head!r}")
            return c, sealer

        def ping_pong(c: RawTls, sealer: Sealer, what: str, **kw):
            sealer.send(build_frame(OP_TEXT, b'{"op":"ping"}'), **kw)
            op, payload = c.recv_ws_frame()
            check(op == OP_TEXT and b'"pong"' in payload, f"{what}: expected a pong, got {op} {payload[:100]!r}")

        def sealed_ok(name: str, steps) -> str:
            c, sealer = sealed_conn(name)
            try:
                ping_pong(c, sealer, f"{name}: before")
                seen = len(c.record_lengths)
                steps(c, sealer)
                ping_pong(c, sealer, f"{name}: after")
                return f"{sealer.suite}; server records after it: {c.record_lengths[seen:]}"
            finally:
                c.close()

        def key_update(requested: bool):
            def steps(c: RawTls, sealer: Sealer):
                sealer.send(bytes([24, 0, 0, 1, int(requested)]), inner_type=22)
                sealer.key_update()
                seen = len(c.record_lengths)
                ping_pong(c, sealer, "under the next key")
                answered = KEY_UPDATE_BODY in c.record_lengths[seen:]
                check(answered == requested, f"KeyUpdate(update_requested={int(requested)}): the server "
                                             f"{'did not answer' if requested else 'answered'}; record "
                                             f"bodies {c.record_lengths[seen:]}")
            return steps

        def twice(c: RawTls, sealer: Sealer):
            for _ in range(2):
                sealer.send(bytes([24, 0, 0, 1, 1]), inner_type=22)
                sealer.key_update()

        for name, steps in (
                ("padding after the content type", lambda c, s: ping_pong(c, s, "padded", padding=300)),
                ("an empty application data record", lambda c, s: s.send(b"")),
                ("KeyUpdate asking for the server's (answered, both directions re-keyed)", key_update(True)),
                ("KeyUpdate not asking (not answered)", key_update(False)),
                ("two KeyUpdates asking, back to back", twice)):
            async def ok_case(name=name, steps=steps):
                before = (await srv.astats())["tls_record_errors"]
                log(f"{name}: {await asyncio.to_thread(sealed_ok, name, steps)}")
                after = (await srv.astats())["tls_record_errors"]
                check(after == before, f"{name}: tls_record_errors {before} -> {after}")
            await checks.arun(f"sealed here: {name} -> accepted, the connection goes on", ok_case)

        def key_update_behind_blocked_write() -> str:
            # The server's answering KeyUpdate must go after the records a full socket holds back and
            # before any record sealed later: Python's OpenSSL reads them all, in order.
            c, sealer = sealed_conn("blocked KeyUpdate")
            try:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                sealer.send(build_frame(OP_TEXT, b'{"op":"subscribe","args":["ku"]}'))
                op, payload = c.recv_ws_frame()
                check(b'"subscribe"' in payload, f"subscribe ack: {payload!r}")
                stalls = srv.stats()["write_stalls"]
                deadline = time.monotonic() + 30
                while srv.stats()["write_stalls"] <= stalls:
                    check(time.monotonic() < deadline, "the server's write never blocked: test setup")
                    srv.publish("ku", 20, 30000)
                    time.sleep(0.05)
                sealer.send(bytes([24, 0, 0, 1, 1]), inner_type=22)
                sealer.key_update()
                last = srv.publish("ku", 20, 30000)
                sealer.send(build_frame(OP_TEXT, b'{"op":"ping"}'))  # under the next key
                got, prev, pong = 0, 0, False
                while not pong or prev < last:
                    op, payload = c.recv_ws_frame(20)
                    if b'"event":"pong"' in payload[:40]:
                        pong = True
                        continue
                    if b'"event"' in payload[:40]:
                        continue  # a drop notice
                    seq = check_payload(payload.decode(), "ku", None, 30000, "blocked KeyUpdate")
                    check(seq > prev, f"seq {seq} after {prev}")
                    prev, got = seq, got + 1
                check(KEY_UPDATE_BODY in c.record_lengths, "the server never answered the KeyUpdate")
                return f"{got} messages up to seq {last} byte-exact and a pong across the server's KeyUpdate"
            finally:
                c.close()

        async def key_update_blocked_case():
            before = (await srv.astats())["tls_record_errors"]
            log(f"KeyUpdate behind a blocked write: {await asyncio.to_thread(key_update_behind_blocked_write)}")
            after = (await srv.astats())["tls_record_errors"]
            check(after == before, f"tls_record_errors {before} -> {after}")
        await checks.arun("sealed here: KeyUpdate asking, while the server's write is blocked: answered in order",
                          key_update_blocked_case)

        def sealed_bad(name: str, make, alert: str | None) -> str:
            c, sealer = sealed_conn(name)
            try:
                ping_pong(c, sealer, f"{name}: before")
                c.send_raw(make(sealer))
                how = c.read_to_end(10)
                want = f"alert {ALERT_REASONS[alert]}" if alert else "eof"
                check(how == want, f"{name}: expected {want}, the client saw: {how}")
                ended = c.wait_eof(10)
                check(ended in ("eof", "reset"), f"{name}: the connection stayed open ({ended})")
                return how
            finally:
                c.close()

        def replayed(sealer: Sealer) -> bytes:
            return sealer.seal(build_frame(OP_TEXT, b'{"op":"ping"}'), seq=sealer.seq - 1)

        for name, make, alert in (
                ("a NewSessionTicket from the client", lambda s: s.seal(bytes([4, 0, 0, 0]), inner_type=22),
                 "unexpected_message"),
                ("KeyUpdate with request_update 2", lambda s: s.seal(bytes([24, 0, 0, 1, 2]), inner_type=22),
                 "illegal_parameter"),
                ("KeyUpdate with data after it in its record",
                 lambda s: s.seal(bytes([24, 0, 0, 1, 0]) * 2, inner_type=22), "unexpected_message"),
                ("KeyUpdate of the wrong length", lambda s: s.seal(bytes([24, 0, 0, 2, 0, 0]), inner_type=22),
                 "decode_error"),
                ("no content type (all zeros)", lambda s: s.seal(b"", inner_type=0, padding=10), "unexpected_message"),
                ("content type 24 (heartbeat)", lambda s: s.seal(b"\x01\x00\x10", inner_type=24), "unexpected_message"),
                ("16,385 bytes of content", lambda s: s.seal(bytes(16385)), "record_overflow"),
                ("a replayed record (sequence number reused)", replayed, "bad_record_mac"),
                ("an alert of 3 bytes", lambda s: s.seal(b"\x02\x28\x00", inner_type=21), "decode_error"),
                ("close_notify", lambda s: s.seal(b"\x01\x00", inner_type=21), None)):
            async def bad_case(name=name, make=make, alert=alert):
                before = (await srv.astats())["tls_record_errors"]
                log(f"{name}: client saw {await asyncio.to_thread(sealed_bad, name, make, alert)}")
                after = (await srv.astats())["tls_record_errors"]
                check(after == before + (1 if alert else 0), f"{name}: tls_record_errors {before} -> {after}")
                await canary_gets_data(name)
            outcome = f"{alert} alert" if alert else "the server closes, no error"
            await checks.arun(f"sealed here: {name} -> {outcome}", bad_case)

    if have_cryptography():
        await sealed_cases()
    else:
        log("  SKIP: records sealed here need python3-cryptography (scripts/install-deps installs it)")

    # -- a partial record, then nothing: the existing timers end the connection
    half = record(23, random.randbytes(100), 1000)

    def partial(stage: str) -> str:
        c = RawTls(port, ctx13)
        try:
            c.wait_ticket()
            t0 = time.monotonic()
            if stage in ("upgraded", "subscribed"):
                c.upgrade("/ws?subscribe=p" if stage == "subscribed" else "/ws")
            c.send_raw(half)
            how = c.read_to_end(15)
            took = time.monotonic() - t0
            check(how in ("eof", "reset", "close_notify"), f"partial record ({stage}): ended by {how}")
            frames = []
            while len(c.plain) >= 2:
                n = c.plain[1] & 0x7F
                frames.append((c.plain[0] & 0x0F, bytes(c.plain[2:2 + n])))
                del c.plain[:2 + n]
            closes = [parse_close(p) for op, p in frames if op == OP_CLOSE]
            if stage == "upgraded":
                check(closes and closes[0][0] == 1008,
                      f"partial record after the upgrade: expected close 1008 (subscribe timeout), frames {frames}")
            return f"ended by {how} after {took:.1f} s, close frames {closes}"
        finally:
            c.close()

    for stage, timer in (("before the request", "handshake_timeout"), ("upgraded", "subscribe_timeout"),
                         ("subscribed", "idle_timeout")):
        async def partial_case(stage=stage, timer=timer):
            what = await asyncio.to_thread(partial, stage)
            log(f"partial record, {stage}: {what}")
            await canary_gets_data(f"a partial record ({stage})")
        await checks.arun(f"a partial record and then nothing ({stage}) is ended by {timer}", partial_case)

    # -- 4. headless Chromium
    async def chromium():
        if not os.access(CHROMIUM, os.X_OK):
            log(f"  SKIP: {CHROMIUM} is not installed (scripts/install-deps installs chromium)")
            return
        before = await own_records()
        page = PageServer(PAGE)
        try:
            async with headless_chromium(f"{page.origin}/?port={port}&count={len(SIZES)}",
                                         ["--ignore-certificate-errors"]):
                if not await asyncio.to_thread(page.ready.wait, 40):
                    fail(f"chromium did not subscribe within 40 s (result so far {page.result})")
                expected = await publish("web", SIZES)
                if not await asyncio.to_thread(page.done.wait, 40):
                    fail("chromium reported nothing within 40 s")
                r = page.result
                msgs = r.get("messages", [])
                check(len(msgs) == len(SIZES), f"chromium: {len(msgs)} messages of {len(SIZES)}: "
                                               f"{ {k: v for k, v in r.items() if k != 'messages'} }")
                for m, (seq, n) in zip(msgs, expected):
                    check_payload(m, "web", seq, n, "chromium")
                check(r.get("pong"), f"chromium: no pong for its ping: {r}")
                after = await own_records()
                check(after > before, f"tls_own_records {before} -> {after}: chromium's connection was not ours")
                log(f"chromium: {len(msgs)} messages ({SIZES} bytes) byte-exact, pong; tls_own_records {before} -> {after}")
        finally:
            page.close()
    await checks.arun("headless Chromium (BoringSSL) over wss: byte-exact, >16 KiB frames, ping/pong", chromium)

    # -- node's own WebSocket (undici) over node's TLS
    async def node_client():
        argv = node_websocket_argv()
        if argv is None:
            log("  SKIP: no node with a built-in WebSocket (node 20: --experimental-websocket)")
            return
        before = await own_records()
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=certs["ca"])
        p = spawn([*argv, NODE_CLIENT, f"wss://{HOST}:{port}/ws", "node", str(len(SIZES))],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            line = await asyncio.wait_for(asyncio.to_thread(p.stdout.readline), 20)
            check(line == b"ready\n", f"node: expected 'ready', got {line!r}; stderr "
                                       f"{p.stderr.read().decode(errors='replace') if p.poll() is not None else ''}")
            expected = await publish("node", SIZES)
            line = await asyncio.wait_for(asyncio.to_thread(p.stdout.readline), 20)
            check(line, f"node: no result; stderr {p.stderr.read().decode(errors='replace')}")
            r = json.loads(line)
            check(len(r["messages"]) == len(SIZES) and r["pong"],
                  f"node: {len(r['messages'])} messages, pong {r['pong']}")
            for m, (seq, n) in zip(r["messages"], expected):
                check_payload(m, "node", seq, n, "node")
            after = await own_records()
            check(after == before + 1, f"tls_own_records {before} -> {after} for node's connection")
            log(f"node {' '.join(argv)}: {len(SIZES)} messages byte-exact, pong")
        finally:
            kill_child(p)
    await checks.arun("node's WebSocket over wss: byte-exact, >16 KiB frames, ping/pong", node_client)

    await canary_gets_data("all cases")
    await canary.close()
    rc = await srv.aquit(30)
    check(rc == 0, f"server exited with {rc}")

    # -- 1,000 connections each holding half a record (a server of their own: a long
    # handshake_timeout keeps them open while they are counted)
    def many_partial():
        n = 1000
        big = Server(args.server, ["--shards", "1", "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                                   "--handshake-timeout-ms", 120000, "--ping-interval-ms", 0],
                     name="partial-server")
        conns = []
        try:
            for _ in range(n):
                conns.append(RawTls(big.port, ctx13))
            deadline = time.monotonic() + 20
            while (st := big.stats())["tls_own_records"] < n:
                check(time.monotonic() < deadline, f"{st['tls_own_records']} of {n} connections handed over")
                time.sleep(0.05)
            base = big.stats()
            rss0 = rss_kib(big.pid)
            # Half a record each: a header announcing 16,000 bytes and 8,000 of them.
            half_record = record(23, random.randbytes(8000), 16000)
            for c in conns:
                c.send_raw(half_record)
            # The server has read them all when its input queues are empty: poll sessions' heap growth
            # until it stops changing (no sleep as an assertion: the bound holds whenever it is read).
            deadline = time.monotonic() + 20
            last = -1
            while True:
                heap = big.stats()["heap_in_use_bytes"]
                if heap == last or time.monotonic() > deadline:
                    break
                last = heap
                time.sleep(0.2)
            held = big.stats()
            rss1 = rss_kib(big.pid)
            check(held["sessions"] == base["sessions"] and held["tls_record_errors"] == 0,
                  f"connections with half a record were ended: {held}")
            grew_kib = rss1 - rss0
            heap_kib = (held["heap_in_use_bytes"] - base["heap_in_use_bytes"]) // 1024
            log(f"{n} connections holding half a record: RSS {rss0} -> {rss1} KiB (+{grew_kib}), "
                f"heap +{heap_kib} KiB ({heap_kib * 1024 // n} B per connection)")
            bound = n * 17
            if SANITIZED:
                log(f"under a sanitizer: bound {bound} KiB not asserted")
            else:
                check(grew_kib <= bound, f"RSS grew {grew_kib} KiB for {n} half records (bound {bound} KiB)")
                check(heap_kib <= bound, f"heap grew {heap_kib} KiB for {n} half records (bound {bound} KiB)")
            for c in conns:
                c.close()
            conns.clear()
            deadline = time.monotonic() + 20
            while (st := big.stats())["sessions"] > 0:
                check(time.monotonic() < deadline, f"20 s after closing, {st['sessions']} sessions left")
                time.sleep(0.05)
            freed_kib = (st["heap_in_use_bytes"] - base["heap_in_use_bytes"]) // 1024
            log(f"all closed: heap {freed_kib:+} KiB against the {n} idle connections, RSS {rss_kib(big.pid)} KiB")
            check(SANITIZED or st["heap_in_use_bytes"] <= base["heap_in_use_bytes"],
                  f"heap after closing all is {freed_kib:+} KiB against {n} idle connections: {st}")
            check(big.quit(30) == 0, "partial-server did not exit 0")
        finally:
            for c in conns:
                c.close()
    checks.run("1,000 connections with half a record: RSS bounded per connection, all freed on close",
               many_partial)
    checks.finish()


if __name__ == "__main__":
    run_test("tls_records", body)

#!/usr/bin/python3
"""permessage-deflate to clients, compressed once per message (docs/protocol.md, "Compression").

  /usr/bin/python3 tests/integration/test_deflate.py --server build/tests/integration/fanout-test-server

* python websockets (which offers permessage-deflate by default) negotiates it, with
  server_no_context_takeover and client_no_context_takeover, and gets every message byte-exact; a
  client that offers nothing gets the same messages uncompressed; its compressed control messages work.
* a raw socket client sees RSV1 on messages above the threshold, RSV1 clear below it, and inflates
  each message alone (no context) to the published bytes.
* the compression counter grows by the number of messages, not messages x clients.
* headless Chromium (skipped with a note when /usr/bin/chromium is missing) negotiates it and gets
  every message byte-exact.
* compression bombs: ~1 GB of zeros in a ~1 MB compressed frame, and ~60 MB in ~60 KB, are closed
  with 1009 while the server's peak RSS stays bounded.
"""

import asyncio
import base64
import json
import os
import socket
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_testlib import CHROMIUM, PageServer, headless_chromium  # noqa: E402
from fanout_testlib import (HOST, Checks, Server, WsClient, check, check_payload, collect_topic_data, fail,  # noqa: E402
                            log, run_test)

THRESHOLD = 256


def deflate_stats(srv: Server) -> dict:
    line = srv.cmd("deflate-stats", "deflate ")
    return json.loads(line[len("deflate "):])


def peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def client_deflate(data: bytes, level: int = 6) -> bytes:
    """Raw deflate without the 00 00 ff ff tail (RFC 7692 7.2.1), as a client sends it."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def zeros_bomb(total: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = [c.compress(chunk) for _ in range(total >> 20)]
    parts.append(c.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]


class RawClient:
    """A WebSocket client on a plain socket: sees RSV1 and the compressed bytes themselves."""

    def __init__(self, port: int, offer: str | None = "permessage-deflate; client_max_window_bits"):
        self.s = socket.create_connection((HOST, port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        if offer:
            head += f"Sec-WebSocket-Extensions: {offer}\r\n"
        self.s.sendall((head + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                fail(f"raw client: connection closed during the handshake: {self.buf!r}")
            self.buf += d
        resp, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.response = resp.decode()
        check(" 101 " in self.response.split("\r\n")[0], f"raw client: no 101: {self.response}")
        self.extensions = ""
        for line in self.response.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                self.extensions = value.strip()

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            d = self.s.recv(1 << 16)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self) -> tuple[int, bool, bytes]:
        """(opcode, rsv1, payload) of the next frame."""
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0F, bool(b0 & 0x40), self._read(n)

    def send(self, payload: bytes, opcode: int = 1, rsv1: bool = False):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | (0x40 if rsv1 else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload)) if n < 65536 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        try:
            self.s.sendall(head + mask + masked)
        except OSError:
            pass  # the server may close while a large frame is still going out

    def close_code(self, timeout: float = 20) -> int | None:
        """Reads until the server's close frame; its status code."""
        self.s.settimeout(timeout)
        try:
            while True:
                op, _, payload = self.frame()
                if op == 8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except (EOFError, OSError) as e:
            fail(f"raw client: no close frame: {type(e).__name__}: {e}")

    def close(self):
        self.s.close()


def inflate_message(payload: bytes) -> bytes:
    d = zlib.decompressobj(-15)  # a fresh context per message: server_no_context_takeover
    return d.decompress(payload + b"\x00\x00\xff\xff")


PAGE = """<!doctype html><html><body><script>
const q = new URLSearchParams(location.search);
const want = Number(q.get("count"));
const result = {messages: []};
function post(path, body) { return fetch(path, {method: "POST", body: JSON.stringify(body)}); }
const ws = new WebSocket("ws://127.0.0.1:" + q.get("port") + "/ws");
ws.onopen = () => { result.extensions = ws.extensions; ws.send(JSON.stringify({op: "subscribe", args: ["web"]})); };
ws.onmessage = (e) => {
  const d = JSON.parse(e.data);
  if (d.event === "subscribe") { post("/ready", {}); return; }
  if (d.event) return;
  result.messages.push(e.data);
  if (result.messages.length === want) { ws.close(); post("/result", result); }
};
ws.onclose = (e) => { if (result.messages.length < want) { result.close = e.code; post("/result", result); } };
setTimeout(() => { result.timeout = true; post("/result", result); }, 40000);
</script></body></html>"""




async def body(args):
    checks = Checks()
    srv = Server(args.server, ["--shards", "2", "--deflate-threshold", THRESHOLD])
    port = srv.port

    c1 = await WsClient.open(port, "/ws", "c1(deflate)")
    c2 = await WsClient.open(port, "/ws", "c2(deflate)")
    plain = await WsClient.open(port, "/ws", "plain(no extension)", compression=None)
    raw = RawClient(port)

    def negotiated():
        for c in (c1, c2):
            names = [type(e).__name__ for e in c.ws.extensions]
            check(names == ["PerMessageDeflate"], f"{c.name}: extensions {names}")
            e = c.ws.extensions[0]
            check(e.remote_no_context_takeover and e.local_no_context_takeover,
                  f"{c.name}: both directions without context takeover: {vars(e)}")
        check(plain.ws.extensions == [], f"plain: extensions {plain.ws.extensions}")
        check(raw.extensions == "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
              f"raw: answer {raw.extensions!r}")
    checks.run("python websockets and a raw client negotiate permessage-deflate; a client without it does not",
               negotiated)

    async def subscribe_all():
        for c in (c1, c2, plain):
            await c.subscribe("d")  # c1, c2: the subscribe itself goes out compressed (websockets)
        raw.send(b'{"op":"subscribe","args":["d"]}')
        op, rsv1, payload = raw.frame()
        check(op == 1 and not rsv1 and b'"event":"subscribe"' in payload,
              f"raw: a small ack goes uncompressed: op {op} rsv1 {rsv1} {payload[:100]!r}")
        await srv.arequire_subscribers(4)
    await checks.arun("subscribe, compressed messages from the client included", subscribe_all)

    sizes = [100] * 10 + [1000] * 100 + [60000]
    before = deflate_stats(srv)

    async def deliver():
        for n in (100, 1000, 60000):
            await srv.apublish("d", sizes.count(n), n)
        expected = {"d": [(i + 1, n) for i, n in enumerate(sizes)]}
        await asyncio.gather(*(collect_topic_data(c, expected, 60) for c in (c1, c2, plain)))

        def raw_read():
            compressed = 0
            for i, n in enumerate(sizes):
                op, rsv1, payload = raw.frame()
                check(op == 1, f"raw: message {i + 1}: opcode {op}")
                if n < THRESHOLD:
                    check(not rsv1, f"raw: message {i + 1} of {n} B is under the threshold but compressed")
                text = inflate_message(payload) if rsv1 else payload
                if rsv1:
                    compressed += 1
                    check(len(payload) < len(text), f"raw: message {i + 1}: compressed {len(payload)} >= {len(text)}")
                check_payload(text.decode(), "d", i + 1, n, "raw")
            return compressed
        compressed = await asyncio.to_thread(raw_read)
        log(f"raw client: {compressed} of {sizes.count(1000) + 1} messages above the threshold came compressed")
        # A shard that meets a message while another compresses it sends it uncompressed (legal);
        # with 4 clients on 2 shards most must still come compressed.
        check(compressed >= (sizes.count(1000) + 1) // 2, f"raw: only {compressed} messages compressed")
    await checks.arun("every message byte-exact after inflate, for deflate and plain clients alike", deliver)

    def counted_once():
        after = deflate_stats(srv)
        n = after["compressions"] - before["compressions"]
        big = sum(1 for s in sizes if s >= THRESHOLD)
        log(f"compressions {n} for {big} messages above the threshold, 3 compressing clients; "
            f"bytes saved {after['bytes_saved'] - before['bytes_saved']}; "
            f"deliveries sent uncompressed while another shard compressed: {after['raced'] - before['raced']}")
        check(n == big, f"compressions grew by {n}: expected {big} (once per message, not per client)")
        check(after["bytes_saved"] > before["bytes_saved"], "no bytes saved")
    checks.run("the compression counter counts messages, not messages x clients", counted_once)

    async def ping_compressed():
        raw.send(client_deflate(b'{"op":"ping"}' + b" " * 300), rsv1=True)
        op, rsv1, payload = raw.frame()
        check(op == 1 and b'"event":"pong"' in payload, f"raw: compressed ping answered: {payload[:100]!r}")
    await checks.arun("a compressed control message from a raw client is inflated and answered", ping_compressed)

    def fragmented():
        packed = client_deflate(b'{"op":"ping"}' + b" " * 400)
        half = len(packed) // 2

        def frame(b0, payload):  # masked with a zero key
            return bytes([b0, 0x80 | len(payload)]) + b"\0\0\0\0" + payload
        f = RawClient(port)
        f.s.sendall(frame(0x40 | 0x01, packed[:half]) + frame(0x80, packed[half:]))  # RSV1 on the first only
        op, _, payload = f.frame()
        check(op == 1 and b'"event":"pong"' in payload, f"fragmented compressed ping: {payload[:100]!r}")
        f.close()
    checks.run("a compressed message in two fragments (RSV1 on the first) is inflated", fragmented)

    async def chromium():
        if not os.access(CHROMIUM, os.X_OK):
            log(f"  SKIP: {CHROMIUM} is not installed (scripts/install-deps installs chromium)")
            return
        page = PageServer(PAGE)
        count = 30
        try:
            async with headless_chromium(f"{page.origin}/?port={port}&count={count}"):
                if not await asyncio.to_thread(page.ready.wait, 60):
                    fail("chromium did not subscribe within 60 s")
                first = deflate_stats(srv)["compressions"]
                await srv.apublish("web", count, 2000)
                if not await asyncio.to_thread(page.done.wait, 60):
                    fail("chromium reported nothing within 60 s")
                r = page.result
                check("permessage-deflate" in r.get("extensions", ""), f"chromium: extensions {r.get('extensions')!r}")
                check(len(r.get("messages", [])) == count, f"chromium: {len(r.get('messages', []))} messages, {r}")
                for i, m in enumerate(r["messages"]):
                    check_payload(m, "web", i + 1, 2000, "chromium")
                n = deflate_stats(srv)["compressions"] - first
                check(n == count, f"compressions grew by {n} for {count} messages")
                log(f"chromium: extensions {r['extensions']!r}, {count} messages byte-exact")
        finally:
            page.close()
    await checks.arun("headless Chromium negotiates it and gets every message byte-exact", chromium)

    def small_bomb():
        bomb = client_deflate(bytes(60 << 20), 9)  # ~60 MB of zeros in ~60 KB: under the 64 KiB frame bound
        check(len(bomb) < 64 * 1024, f"bomb of {len(bomb)} B")
        b = RawClient(port)
        b.send(bomb, opcode=2, rsv1=True)
        code = b.close_code()
        b.close()
        check(code == 1009, f"60 MB bomb: close code {code}, expected 1009")
    checks.run("a 60 MB inflate bomb in a 60 KB frame is closed with 1009", small_bomb)

    # A server whose message bound lets a ~1 MB compressed frame in: the inflater itself must stop it.
    big = Server(args.server, ["--max-message-bytes", 2 << 20], name="bomb-server")

    def gigabyte_bomb():
        bomb = zeros_bomb(1 << 30)
        log(f"1 GiB of zeros deflates to {len(bomb)} B")
        check(len(bomb) < 2 << 20, f"bomb of {len(bomb)} B does not fit the frame bound")
        rss_before = peak_rss_kb(big.pid)
        b = RawClient(big.port)
        b.send(bomb, opcode=2, rsv1=True)
        code = b.close_code(60)
        b.close()
        rss_after = peak_rss_kb(big.pid)
        log(f"bomb-server peak RSS {rss_before} kB -> {rss_after} kB")
        check(code == 1009, f"1 GiB bomb: close code {code}, expected 1009")
        check(rss_after - rss_before < 64 * 1024, f"peak RSS grew {rss_after - rss_before} kB for a 1 GiB bomb")
        # The server still serves.
        ok = RawClient(big.port)
        ok.send(b'{"op":"ping"}')
        op, _, payload = ok.frame()
        check(b'"event":"pong"' in payload, f"after the bomb: {payload!r}")
        ok.close()
    checks.run("a 1 GiB inflate bomb is closed with 1009, server memory bounded", gigabyte_bomb)

    def disabled():
        off = Server(args.server, ["--deflate", 0], name="no-deflate-server")
        r = RawClient(off.port)
        check(r.extensions == "", f"--deflate 0: answered {r.extensions!r}")
        r.send(client_deflate(b'{"op":"ping"}'), rsv1=True)  # RSV1 not negotiated: a protocol error
        code = r.close_code()
        check(code == 1002, f"RSV1 without the extension: close code {code}, expected 1002")
        r.close()
        off.quit()
    checks.run("with deflate off nothing is negotiated and RSV1 is a protocol error", disabled)

    raw.close()
    for c in (c1, c2, plain):
        await c.ws.close()
    big.quit()
    srv.quit()
    checks.finish()


if __name__ == "__main__":
    run_test("deflate", body)

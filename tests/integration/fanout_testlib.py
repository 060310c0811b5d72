"""Shared helpers for the fanout integration tests.

Run with Debian's python (/usr/bin/python3, which has python3-websockets 10.4); standard library
only besides websockets, which this module does not import itself.

What is here:
  * run_test(): argument parsing (--server PATH), an overall watchdog timeout, uniform PASS/FAIL
    reporting and cleanup: every process a test starts is killed by its PID at the end, whatever
    happened (and dies with the test through PR_SET_PDEATHSIG if the test itself is killed).
  * Server: starts fanout-test-server with arguments, reads `port=N`, sends stdin commands and
    reads their answers (see tests/integration/README.md).
  * expected_payload()/check_payload(): rebuild a published message from the README format and
    compare byte for byte.
  * Raw sockets: plain HTTP requests, a WebSocket handshake, a frame builder that can produce
    malformed frames, and a frame reader (RawWS) that reports close codes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ctypes
import faulthandler
import hashlib
import inspect
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOST = "127.0.0.1"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class TestFailure(Exception):
    """An assertion about the server's observable behaviour did not hold."""


def fail(msg: str):
    raise TestFailure(msg)


def check(cond, msg: str):
    if not cond:
        raise TestFailure(msg)


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def short(data, n: int = 160) -> str:
    """A printable prefix of data, for failure messages."""
    if isinstance(data, (bytes, bytearray)):
        r = repr(bytes(data[:n]))
    else:
        r = repr(str(data)[:n])
    if len(data) > n:
        r += f"... ({len(data)} bytes total)"
    return r


# ----------------------------------------------------------------------------------------------
# Process bookkeeping: every child is registered and killed by PID at the end.

_children_lock = threading.Lock()
_children: dict[int, subprocess.Popen] = {}
_servers: list["Server"] = []
_shutting_down = False

_PR_SET_PDEATHSIG = 1


def _child_preexec():
    # Die with the test process, even if the test is SIGKILLed (e.g. by ctest's timeout).
    # The signal fires when the *thread* that forked exits: start children from the main thread.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def spawn(argv, **kw) -> subprocess.Popen:
    """Popen that registers the child for cleanup (refused once cleanup has begun)."""
    with _children_lock:
        if _shutting_down:
            raise RuntimeError("test is shutting down: not starting another process")
        p = subprocess.Popen(argv, preexec_fn=_child_preexec, **kw)
        _children[p.pid] = p
    return p


def kill_child(p: subprocess.Popen):
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=10)
    except Exception:
        pass
    with _children_lock:
        _children.pop(p.pid, None)


def kill_all_children():
    global _shutting_down
    with _children_lock:
        _shutting_down = True
        procs = list(_children.values())
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    with _children_lock:
        _children.clear()


# ----------------------------------------------------------------------------------------------
# The test server

class Server:
    """fanout-test-server driven through stdin. See tests/integration/README.md."""

    def __init__(self, path: str, args=(), name: str = "server", start_timeout: float = 20):
        self.name = name
        self.argv = [path, *map(str, args)]
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="fanout-itest-", suffix=".stderr",
                                                       delete=False)
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.stash: list[str] = []      # lines read while waiting for something else
        self.transcript: list[str] = []  # everything seen on stdout, for failure reports
        log(f"{name}: starting {' '.join(self.argv)}")
        self.proc = spawn(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=self.stderr_file, bufsize=0)
        _servers.append(self)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        line = self.expect("port=", timeout=start_timeout)
        try:
            self.port = int(line.strip()[len("port="):])
        except ValueError:
            fail(f"{name}: malformed port line {line!r}")
        check(0 < self.port < 65536, f"{name}: bad port in {line!r}")
        log(f"{name}: pid {self.pid} listening on port {self.port}")

    def _read_stdout(self):
        f = self.proc.stdout
        buf = b""
        while True:
            try:
                chunk = f.read1(65536) if hasattr(f, "read1") else os.read(f.fileno(), 65536)
            except Exception:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.put(line.decode("utf-8", "replace").rstrip("\r"))
        if buf:
            self.lines.put(buf.decode("utf-8", "replace"))
        self.lines.put(None)

    # -- diagnostics

    def stderr_tail(self, nbytes: int = 3000) -> str:
        try:
            with open(self.stderr_file.name, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "<stderr unavailable>"

    def describe_death(self) -> str:
        rc = self.proc.poll()
        state = "still running" if rc is None else f"exited with {rc}"
        if rc is not None and rc < 0:
            try:
                state += f" ({signal.Signals(-rc).name})"
            except ValueError:
                pass
        return (f"{self.name} (pid {self.pid}) {state}; last stdout lines: {self.transcript[-5:]}; "
                f"stderr tail:\n{self.stderr_tail()}")

    # -- stdin/stdout protocol

    def expect(self, prefix: str, timeout: float = 30) -> str:
        """Return the next stdout line starting with prefix; other lines are stashed."""
        for i, line in enumerate(self.stash):
            if line.startswith(prefix):
                return self.stash.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"{self.name}: no stdout line starting with {prefix!r} within {timeout} s; "
                     + self.describe_death())
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                self.lines.put(None)  # stay at EOF for later callers
                try:
                    self.proc.wait(timeout=5)
                except Exception:
                    pass
                fail(f"{self.name}: stdout closed while waiting for {prefix!r}; "
                     + self.describe_death())
            self.transcript.append(line)
            if line.startswith(prefix):
                return line
            self.stash.append(line)

    def send(self, command: str):
        try:
            self.proc.stdin.write((command + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            try:
                self.proc.wait(timeout=5)
            except Exception:
                pass
            fail(f"{self.name}: cannot write {command!r} to stdin ({e}); " + self.describe_death())

    def cmd(self, command: str, expect_prefix: str, timeout: float = 60) -> str:
        self.send(command)
        return self.expect(expect_prefix, timeout)

    def publish(self, topic: str, count: int, nbytes: int, timeout: float = 60) -> int:
        line = self.cmd(f"publish {topic} {count} {nbytes}", f"published {topic} ", timeout)
        try:
            return int(line.split()[2])
        except (IndexError, ValueError):
            fail(f"{self.name}: malformed answer to publish: {line!r}")

    def wait_subscribers(self, n: int, timeout_ms: int = 20000) -> int:
        line = self.cmd(f"wait-subscribers {n} {timeout_ms}", "subscribers ",
                        timeout=timeout_ms / 1000 + 30)
        try:
            return int(line.split()[1])
        except (IndexError, ValueError):
            fail(f"{self.name}: malformed answer to wait-subscribers: {line!r}")

    def require_subscribers(self, n: int, timeout_ms: int = 20000) -> int:
        got = self.wait_subscribers(n, timeout_ms)
        check(got >= n, f"{self.name}: wait-subscribers {n} {timeout_ms} answered {got}: "
                        f"the server did not register all subscriptions")
        return got

    def stats(self) -> dict:
        line = self.cmd("stats", "{", timeout=30)
        try:
            d = json.loads(line)
        except ValueError as e:
            fail(f"{self.name}: stats answer is not JSON ({e}): {line!r}")
        check(isinstance(d, dict), f"{self.name}: stats answer is not an object: {line!r}")
        return d

    def quit(self, timeout: float = 30) -> int:
        """Send quit, expect `bye` and the process to exit; return its exit code."""
        self.cmd("quit", "bye", timeout)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name}: did not exit within {timeout} s after quit/bye")

    # Awaitable versions for asyncio tests: the blocking stdin/stdout exchange runs in a thread so
    # the event loop keeps reading from the clients meanwhile.
    async def apublish(self, topic: str, count: int, nbytes: int, timeout: float = 60) -> int:
        return await asyncio.to_thread(self.publish, topic, count, nbytes, timeout)

    async def astats(self) -> dict:
        return await asyncio.to_thread(self.stats)

    async def await_subscribers(self, n: int, timeout_ms: int = 20000) -> int:
        return await asyncio.to_thread(self.wait_subscribers, n, timeout_ms)

    async def arequire_subscribers(self, n: int, timeout_ms: int = 20000) -> int:
        return await asyncio.to_thread(self.require_subscribers, n, timeout_ms)

    async def aquit(self, timeout: float = 30) -> int:
        return await asyncio.to_thread(self.quit, timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        kill_child(self.proc)


# ----------------------------------------------------------------------------------------------
# Payload format: {"seq":<n>,"ts":<us>,"topic":"<topic>","pad":"xxxx..."} exactly `size` bytes.

def expected_payload(seq: int, ts: int, topic: str, size: int) -> str:
    head = '{"seq":%d,"ts":%d,"topic":"%s","pad":"' % (seq, ts, topic)
    tail = '"}'
    return head + "x" * max(0, size - len(head) - len(tail)) + tail


def parse_payload(text, who: str = "") -> dict:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            fail(f"{who}: data message is not UTF-8: {short(text)}")
    try:
        d = json.loads(text)
    except ValueError as e:
        fail(f"{who}: data message is not JSON ({e}): {short(text)}")
    check(isinstance(d, dict), f"{who}: message is not a JSON object: {short(text)}")
    return d


def check_payload(text, topic: str, seq: int | None, size: int, who: str = "") -> int:
    """Check one received data message byte for byte; return its seq."""
    if isinstance(text, (bytes, bytearray)):
        fail(f"{who}: expected a text message, got binary {short(text)}")
    d = parse_payload(text, who)
    for k in ("seq", "ts", "topic", "pad"):
        check(k in d, f"{who}: message lacks {k!r}: {short(text)}")
    check(d["topic"] == topic, f"{who}: expected topic {topic!r}, got {d['topic']!r}: {short(text)}")
    check(isinstance(d["seq"], int) and isinstance(d["ts"], int),
          f"{who}: seq/ts are not integers: {short(text)}")
    if seq is not None:
        check(d["seq"] == seq, f"{who}: topic {topic}: expected seq {seq}, got {d['seq']} "
                               f"(lost, duplicated or reordered message)")
    check(abs(d["ts"] / 1e6 - time.time()) < 3600,
          f"{who}: ts {d['ts']} is not unix time in microseconds")
    exp = expected_payload(d["seq"], d["ts"], topic, size)
    if text != exp:
        n = len(text.encode())
        if n != len(exp):
            fail(f"{who}: topic {topic} seq {d['seq']}: expected {len(exp)} bytes, got {n}: "
                 f"{short(text)}")
        i = next(i for i, (a, b) in enumerate(zip(text, exp)) if a != b)
        fail(f"{who}: topic {topic} seq {d['seq']}: payload differs from the README format at "
             f"offset {i}: got {text[max(0, i - 20):i + 20]!r}, expected {exp[max(0, i - 20):i + 20]!r}")
    return d["seq"]


def is_event(text) -> bool:
    """Control/event messages (acks, pongs, errors, notices) carry an "event" key."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeDecodeError:
            return False
    if '"event"' not in text[:64]:
        return False
    try:
        return "event" in json.loads(text)
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------
# Raw sockets: HTTP and WebSocket frames

def tcp_connect(port: int, host: str = HOST, timeout: float = 10, rcvbuf: int | None = None,
                source: str | None = None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source is not None:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def send_all_tolerant(s: socket.socket, data: bytes) -> str | None:
    """sendall, but report (not raise) a peer that closed/reset: it may have answered already."""
    try:
        s.sendall(data)
        return None
    except (BrokenPipeError, ConnectionResetError) as e:
        return str(e)
    except socket.timeout:
        return "send timed out (peer stopped reading)"


def recv_until_closed(s: socket.socket, timeout: float, until: bytes | None = None,
                      limit: int = 1 << 20) -> tuple[bytes, str]:
    """Read until EOF/reset (or until `until` appears). Returns (data, how_it_ended)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        if until is not None and until in data:
            return data, "delimiter"
        left = deadline - time.monotonic()
        if left <= 0:
            return data, "timeout"
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, "timeout"
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk
        if len(data) > limit:
            return data, "limit"


class HttpResponse:
    def __init__(self, raw: bytes, ended: str):
        self.raw = raw
        self.ended = ended
        self.status = None
        self.headers: dict[str, str] = {}
        self.body = b""
        head, sep, self.body = raw.partition(b"\r\n\r\n")
        if not sep:
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) >= 2 and parts[0].startswith("HTTP/1.") and parts[1].isdigit():
            self.status = int(parts[1])
            self.status_line = lines[0]
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def __repr__(self):
        return f"<HTTP status={self.status} ended={self.ended} raw={short(self.raw, 300)}>"


def http_exchange(port: int, request: bytes, timeout: float = 10, read_body: bool = False
                  ) -> HttpResponse:
    """Send raw bytes, read the response head (and whatever follows until EOF if read_body)."""
    s = tcp_connect(port, timeout=timeout)
    try:
        err = send_all_tolerant(s, request)
        data, ended = recv_until_closed(s, timeout, None if read_body else b"\r\n\r\n")
        if err and not data:
            ended = f"send failed: {err}; then {ended}"
        return HttpResponse(data, ended)
    finally:
        s.close()


def make_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def handshake_request(path: str = "/ws", host: str = HOST, key: str | None = None,
                      version: str | None = "13", upgrade: str | None = "websocket",
                      connection: str | None = "Upgrade", method: str = "GET",
                      extra: list[tuple[str, str]] = ()) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if upgrade is not None:
        lines.append(f"Upgrade: {upgrade}")
    if connection is not None:
        lines.append(f"Connection: {connection}")
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def build_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
                rsv: int = 0, mask_key: bytes | None = None) -> bytes:
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return hdr + key + apply_mask(payload, key)


def apply_mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def parse_close(payload: bytes) -> tuple[int | None, bytes]:
    if len(payload) < 2:
        return None, b""
    return struct.unpack("!H", payload[:2])[0], payload[2:]


def check_retry_advice(who: str, reason, expect: str, lo_ms: int, hi_ms: int) -> int:
    """A 1012/1013 close reason is {"reason":expect,"retry_after_ms":N}, N in [lo_ms, hi_ms], and fits
    the 123 bytes of a close reason. Returns N."""
    raw = reason if isinstance(reason, bytes) else (reason or "").encode()
    check(len(raw) <= 123, f"{who}: close reason of {len(raw)} bytes: {raw!r}")
    try:
        d = json.loads(raw)
    except ValueError:
        fail(f"{who}: close reason is not JSON: {raw!r}")
    check(isinstance(d, dict) and d.get("reason") == expect, f"{who}: close reason {raw!r}, expected reason {expect!r}")
    n = d.get("retry_after_ms")
    check(isinstance(n, int) and lo_ms <= n <= hi_ms,
          f"{who}: retry_after_ms {n!r} outside [{lo_ms}, {hi_ms}] in {raw!r}")
    return n


class ConnectionEnded(Exception):
    def __init__(self, how: str):
        super().__init__(how)
        self.how = how


class RawWS:
    """A minimal hand-rolled WebSocket client over a blocking socket."""

    def __init__(self, port: int, path: str = "/ws", timeout: float = 10,
                 rcvbuf: int | None = None, source: str | None = None, expect_101: bool = True):
        self.sock = tcp_connect(port, timeout=timeout, rcvbuf=rcvbuf, source=source)
        self.buf = bytearray()
        self.frames_seen = 0
        key = make_key()
        self.sock.sendall(handshake_request(path=path, key=key))
        data, ended = recv_until_closed(self.sock, timeout, b"\r\n\r\n")
        head, sep, rest = data.partition(b"\r\n\r\n")
        self.response = HttpResponse(head + sep, ended)
        self.buf += rest
        if expect_101:
            check(self.response.status == 101,
                  f"handshake on {path}: expected 101, got {self.response!r}")
            check(self.response.headers.get("sec-websocket-accept") == accept_for(key),
                  f"handshake on {path}: wrong Sec-WebSocket-Accept "
                  f"{self.response.headers.get('sec-websocket-accept')!r}, expected {accept_for(key)!r}")
            check("upgrade" in self.response.headers.get("connection", "").lower()
                  and self.response.headers.get("upgrade", "").lower() == "websocket",
                  f"handshake on {path}: 101 without Upgrade/Connection headers: {self.response!r}")

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data: bytes) -> str | None:
        return send_all_tolerant(self.sock, data)

    def send_frame(self, opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
                   rsv: int = 0) -> str | None:
        return self.send_raw(build_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def send_text(self, text: str) -> str | None:
        return self.send_frame(OP_TEXT, text.encode())

    def _fill(self, n: int, deadline: float):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except ConnectionResetError:
                raise ConnectionEnded("reset")
            if not chunk:
                raise ConnectionEnded("eof")
            self.buf += chunk

    def recv_frame(self, timeout: float = 10) -> tuple[bool, int, bytes]:
        """(fin, opcode, payload) of the next server frame. Raises socket.timeout/ConnectionEnded."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        pos = 2
        if n == 126:
            self._fill(4, deadline)
            n = struct.unpack_from("!H", self.buf, 2)[0]
            pos = 4
        elif n == 127:
            self._fill(10, deadline)
            n = struct.unpack_from("!Q", self.buf, 2)[0]
            pos = 10
        check(not masked, f"server sent a masked frame (opcode {opcode}), RFC 6455 5.1 forbids it")
        check(rsv == 0, f"server sent RSV bits {rsv} without a negotiated extension")
        check(n < (1 << 31), f"server frame claims {n} bytes")
        self._fill(pos + n, deadline)
        payload = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        self.frames_seen += 1
        return fin, opcode, payload

    def recv_message(self, timeout: float = 10, answer_pings: bool = True
                     ) -> tuple[int, bytes]:
        """Next data message (text/binary, reassembled) or a close frame: (opcode, payload).
        Pings are answered, pongs skipped."""
        deadline = time.monotonic() + timeout
        parts, first_op = [], None
        while True:
            fin, op, payload = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if op == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                return op, payload
            if op == OP_CONT:
                check(first_op is not None, "server sent a continuation frame with no message open")
            else:
                check(first_op is None, f"server started a new message (opcode {op}) "
                                        f"inside a fragmented one")
                first_op = op
            parts.append(payload)
            if fin:
                return first_op, b"".join(parts)

    def recv_text(self, timeout: float = 10) -> str:
        op, payload = self.recv_message(timeout)
        if op == OP_CLOSE:
            code, reason = parse_close(payload)
            fail(f"expected a text message, got a close frame code={code} reason={reason!r}")
        check(op == OP_TEXT, f"expected a text message, got opcode {op}")
        return payload.decode("utf-8")

    def expect_close(self, timeout: float = 10, what: str = "") -> tuple[int | None, bytes]:
        """Read (skipping data) until a close frame; return (code, reason). Fails on EOF first."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            left = deadline - time.monotonic()
            try:
                op, payload = self.recv_message(max(0.001, left))
            except socket.timeout:
                fail(f"{what}: no close frame within {timeout} s (skipped {len(skipped)} messages: "
                     f"{[short(m, 80) for m in skipped[-3:]]})")
            except ConnectionEnded as e:
                fail(f"{what}: connection ended ({e.how}) without a close frame "
                     f"(skipped {len(skipped)} messages: {[short(m, 80) for m in skipped[-3:]]})")
            if op == OP_CLOSE:
                return parse_close(payload)
            skipped.append(payload)

    def wait_eof(self, timeout: float = 10) -> str:
        """Discard input until the server closes the TCP connection; 'eof'/'reset'/'timeout'."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                return "reset"
            if not chunk:
                return "eof"


# ----------------------------------------------------------------------------------------------
# python-websockets clients (imported lazily: the module is optional for raw-socket helpers)

async def ws_open(port: int, path: str = "/ws", host: str = HOST, **kw):
    import websockets
    opts = dict(open_timeout=15, close_timeout=5, ping_interval=None, max_size=1 << 24,
                max_queue=1024)
    opts.update(kw)
    return await websockets.connect(f"ws://{host}:{port}{path}", **opts)


class WsClient:
    """A websockets connection whose messages are pumped into two queues: events (JSON objects
    with an "event" key: acks, pongs, errors, notices) and data. Each entry is (index, text) where
    index is the message's position in the connection's stream, so tests can order the two."""

    def __init__(self, ws, name: str):
        self.ws = ws
        self.name = name
        self.events: asyncio.Queue = asyncio.Queue()
        self.data: asyncio.Queue = asyncio.Queue()
        self.count = 0
        self.closed: asyncio.Event = asyncio.Event()
        self.close_code = None
        self.close_reason = None
        self.error = None
        self.task = asyncio.ensure_future(self._pump())

    @classmethod
    async def open(cls, port: int, path: str = "/ws", name: str = "client", **kw) -> "WsClient":
        try:
            ws = await ws_open(port, path, **kw)
        except Exception as e:
            fail(f"{name}: cannot open ws://{HOST}:{port}{path}: {type(e).__name__}: {e}")
        return cls(ws, name)

    async def _pump(self):
        import websockets
        try:
            async for m in self.ws:
                self.count += 1
                (self.events if is_event(m) else self.data).put_nowait((self.count, m))
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - reported through next_*()
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self.events.put_nowait((None, None))
            self.data.put_nowait((None, None))

    def describe_close(self) -> str:
        return (f"connection closed (code={self.close_code}, reason={self.close_reason!r}"
                + (f", error={self.error}" if self.error else "") + ")")

    async def _next(self, q: asyncio.Queue, what: str, timeout: float):
        try:
            idx, m = await asyncio.wait_for(q.get(), timeout)
        except asyncio.TimeoutError:
            fail(f"{self.name}: no {what} within {timeout} s")
        if idx is None:
            q.put_nowait((None, None))
            fail(f"{self.name}: {self.describe_close()} while waiting for {what}")
        return idx, m

    async def next_event(self, timeout: float = 10, what: str = "event") -> tuple[int, dict]:
        idx, m = await self._next(self.events, what, timeout)
        return idx, json.loads(m)

    async def expect_event(self, event: str, timeout: float = 10, **fields) -> tuple[int, dict]:
        idx, d = await self.next_event(timeout, f"event {event!r} {fields or ''}")
        check(d.get("event") == event and all(d.get(k) == v for k, v in fields.items()),
              f"{self.name}: expected event {event!r} {fields or ''}, got {d}")
        return idx, d

    async def next_data(self, timeout: float = 10) -> tuple[int, str]:
        return await self._next(self.data, "data message", timeout)

    def pending_data(self) -> list:
        out = []
        while not self.data.empty():
            idx, m = self.data.get_nowait()
            if idx is None:
                self.data.put_nowait((None, None))
                break
            out.append((idx, m))
        return out

    def pending_events(self) -> list:
        out = []
        while not self.events.empty():
            idx, m = self.events.get_nowait()
            if idx is None:
                self.events.put_nowait((None, None))
                break
            out.append((idx, m))
        return out

    async def send_json(self, obj):
        await self.send(json.dumps(obj, separators=(",", ":")))

    async def send(self, text: str):
        try:
            await self.ws.send(text)
        except Exception as e:
            fail(f"{self.name}: send failed: {type(e).__name__}: {e}; {self.describe_close()}")

    async def subscribe(self, *topics, timeout: float = 10):
        """JSON subscribe; expects one ack per topic (in any order)."""
        await self.send_json({"op": "subscribe", "args": list(topics)})
        want = set(topics)
        while want:
            _, d = await self.next_event(timeout, f"subscribe acks for {sorted(want)}")
            check(d.get("event") == "subscribe" and d.get("arg") in want,
                  f"{self.name}: expected a subscribe ack for one of {sorted(want)}, got {d}")
            want.discard(d["arg"])

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 10)
        except Exception:
            pass
        self.task.cancel()


async def collect_topic_data(client: WsClient, expected: dict, timeout: float = 30) -> None:
    """Receive data until every topic in expected = {topic: [(seq, size), ...]} is complete,
    checking each message byte for byte and in order per topic. Data of any other topic fails."""
    pos = {t: 0 for t in expected}
    remaining = sum(len(v) for v in expected.values())
    deadline = time.monotonic() + timeout
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"{client.name}: incomplete after {timeout} s: "
                 + ", ".join(f"{t}: {pos[t]}/{len(v)}" for t, v in expected.items()))
        try:
            _, m = await client.next_data(left)
        except TestFailure as e:
            fail(f"{e}; progress " + ", ".join(f"{t}: {pos[t]}/{len(v)}" for t, v in expected.items()))
        d = parse_payload(m, client.name)
        t = d.get("topic")
        if t not in expected:
            fail(f"{client.name}: received a message of topic {t!r} it is not subscribed to: "
                 f"{short(m)}")
        check(pos[t] < len(expected[t]),
              f"{client.name}: topic {t}: more messages than published (extra seq {d.get('seq')})")
        seq, size = expected[t][pos[t]]
        check_payload(m, t, seq, size, client.name)
        pos[t] += 1
        remaining -= 1


# ----------------------------------------------------------------------------------------------
# Sub-checks that continue after a failure, so one run reports every broken behaviour.

class Checks:
    def __init__(self):
        self.passed: list[str] = []
        self.failed: list[tuple[str, str]] = []

    def run(self, name: str, fn, *args, **kw):
        log(f"--- {name}")
        try:
            r = fn(*args, **kw)
            if inspect.iscoroutine(r):
                raise RuntimeError("use arun() for coroutines")
            self.passed.append(name)
            log(f"    ok: {name}")
            return r
        except TestFailure as e:
            self.failed.append((name, str(e)))
            log(f"    FAILED: {name}: {e}")
        except Exception as e:
            self.failed.append((name, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
            log(f"    FAILED: {name}: {type(e).__name__}: {e}")

    async def arun(self, name: str, coro_fn, *args, **kw):
        log(f"--- {name}")
        try:
            r = await coro_fn(*args, **kw)
            self.passed.append(name)
            log(f"    ok: {name}")
            return r
        except TestFailure as e:
            self.failed.append((name, str(e)))
            log(f"    FAILED: {name}: {e}")
        except Exception as e:
            self.failed.append((name, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
            log(f"    FAILED: {name}: {type(e).__name__}: {e}")

    def finish(self):
        log(f"sub-checks: {len(self.passed)} passed, {len(self.failed)} failed")
        if self.failed:
            fail("\n".join(f"  [{n}] {m}" for n, m in self.failed))


# ----------------------------------------------------------------------------------------------
# Runner

def _watchdog_fire(name: str, timeout: float):
    sys.stderr.write(f"\nFAIL: {name}: overall timeout of {timeout} s exceeded; "
                     f"stacks follow, then every started process is killed\n")
    try:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    except Exception:
        pass
    for s in list(_servers):
        try:
            sys.stderr.write(f"{s.describe_death()}\n")
        except Exception:
            pass
    sys.stderr.flush()
    kill_all_children()
    os._exit(2)


def base_parser(description: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--server", required=True, help="path to fanout-test-server")
    p.add_argument("--timeout", type=float, default=120, help="overall timeout in seconds")
    return p


def run_test(name: str, body, parser: argparse.ArgumentParser | None = None, argv=None):
    """Parse args, run body(args) (a function or coroutine function) under an overall timeout,
    print PASS/FAIL, kill every started process and exit 0/1."""
    args = (parser or base_parser(name)).parse_args(argv)
    if not os.access(args.server, os.X_OK):
        print(f"FAIL: {name}: server binary {args.server!r} is missing or not executable", flush=True)
        sys.exit(1)
    wd = threading.Timer(args.timeout, _watchdog_fire, (name, args.timeout))
    wd.daemon = True
    wd.start()

    def on_term(signum, frame):
        sys.stderr.write(f"FAIL: {name}: terminated by signal {signum}\n")
        kill_all_children()
        os._exit(3)
    signal.signal(signal.SIGTERM, on_term)

    rc = 1
    try:
        if inspect.iscoroutinefunction(body):
            asyncio.run(body(args))
        else:
            body(args)
        rc = 0
    except TestFailure as e:
        print(f"\nFAIL: {name}:\n{e}", flush=True)
    except Exception:
        print(f"\nFAIL: {name}: unexpected exception:\n{traceback.format_exc()}", flush=True)
    finally:
        wd.cancel()
        if rc != 0:
            for s in _servers:
                print(f"--- {s.name} (pid {s.pid}) stderr tail:\n{s.stderr_tail()}", flush=True)
        kill_all_children()
        for s in _servers:
            try:
                os.unlink(s.stderr_file.name)
            except OSError:
                pass
    if rc == 0:
        print(f"PASS: {name}", flush=True)
    sys.stdout.flush()
    sys.exit(rc)

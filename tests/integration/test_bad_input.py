#!/usr/bin/python3
"""Malformed and hostile input over raw sockets.

  /usr/bin/python3 tests/integration/test_bad_input.py --server build/tests/integration/fanout-test-server

HTTP: garbage, an oversize request head, wrong path, wrong method, a plain GET on the WebSocket
path, missing/invalid Sec-WebSocket-Key and -Version, /healthz; strict HTTP (bodies on GET and
upgrade, bare LF, obs-fold, whitespace before the colon, two Hosts: one 400 whether the request comes
in one write or byte by byte; `since` of 2^64 -> 4002). WebSocket (RFC 6455): unmasked
client frames, oversize messages, invalid UTF-8, bad close codes, fragmented and oversize control
frames, RSV bits, unknown opcodes, broken fragmentation; correct reassembly of fragmented messages
(with a control frame interleaved); the handshake timeout. Every sub-check runs on its own
connection and all are reported; at the end a normal client must still subscribe and receive.
"""

import asyncio
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: E402
                            Checks, RawWS, Server, WsClient, build_frame, check, check_payload,
                            close_payload, collect_topic_data, fail, handshake_request,
                            http_exchange, is_event, log, make_key, recv_until_closed, run_test,
                            send_all_tolerant, short, tcp_connect)

MAX_MESSAGE = 65536
HANDSHAKE_TIMEOUT_MS = 500


# ---------------------------------------------------------------------------------------------
# HTTP level

def expect_status(port, request: bytes, allowed, what: str, must_close: bool = False):
    r = http_exchange(port, request, timeout=10, read_body=must_close)
    check(r.status is not None,
          f"{what}: no HTTP response (connection {r.ended}); got {short(r.raw)}; sent {short(request)}")
    check(r.status in allowed,
          f"{what}: expected HTTP {' or '.join(map(str, allowed))}, got {r.status_line!r}; "
          f"sent {short(request)}")
    if must_close:
        check(r.ended in ("eof", "reset"),
              f"{what}: server answered {r.status} but did not close the connection ({r.ended})")
    return r


def http_checks(port, checks: Checks):
    checks.run("garbage instead of HTTP -> 400", expect_status, port,
               b"HELLO THIS IS NOT HTTP AT ALL\r\n\r\n", (400,), "garbage", True)
    checks.run("binary garbage (a TLS ClientHello) -> 400", expect_status, port,
               bytes.fromhex("1603010200010001fc0303") + os.urandom(64) + b"\r\n\r\n",
               (400,), "binary garbage", True)

    def oversize_head():
        req = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 60) for i in range(200)) + b"\r\n")
        check(len(req) > 8 * 1024 + 1000, "test bug: request head not large enough")
        expect_status(port, req, (431, 400), f"request head of {len(req)} bytes", True)
    checks.run("request head over 8 KiB (many headers) -> 431/400", oversize_head)

    def oversize_line():
        req = b"GET /ws?" + b"q" * 12000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        expect_status(port, req, (431, 414, 400), "request line of 12 KB", True)
    checks.run("request line over 8 KiB -> 431/414/400", oversize_line)

    def endless_header():
        # a head that never ends must be cut off at the limit (answer 431/400 or close), not
        # buffered forever
        s = tcp_connect(port, timeout=10)
        try:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
            sent, answer, how = 0, b"", None
            deadline = time.monotonic() + 10
            while how is None and time.monotonic() < deadline and sent < 4 << 20:
                s.settimeout(0.05)
                try:
                    s.sendall(b"b" * 4096)
                    sent += 4096
                except socket.timeout:
                    break  # the server stopped reading: see below whether it answers or closes
                except (BrokenPipeError, ConnectionResetError):
                    how = "reset while sending"
                    break
                try:
                    chunk = s.recv(4096)
                    if not chunk:
                        how = "eof"
                    answer += chunk
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    how = "reset"
            if how is None:
                s.settimeout(5)
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            how = "eof"
                            break
                        answer += chunk
                except socket.timeout:
                    how = how or "nothing within 5 s"
                except ConnectionResetError:
                    how = "reset"
            log(f"    endless header: {sent} bytes sent, then {how}; answer {short(answer, 40)}")
            check(answer or how in ("eof", "reset", "reset while sending"),
                  f"endless header: after {sent} bytes of one header line the server neither "
                  f"answered nor closed the connection ({how})")
            if answer:
                check(answer.startswith(b"HTTP/1.1 431") or answer.startswith(b"HTTP/1.1 400"),
                      f"endless header: expected 431/400, got {short(answer)}")
        finally:
            s.close()
    checks.run("endless header line is cut off", endless_header)

    checks.run("wrong path -> 404", expect_status, port,
               handshake_request(path="/nope", key=make_key()), (404,), "GET /nope (upgrade)")
    checks.run("wrong path, plain GET -> 404", expect_status, port,
               b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (404,), "GET /nothing-here")
    checks.run("POST on the ws path -> 405", expect_status, port,
               handshake_request(method="POST", key=make_key(), extra=[("Content-Length", "0")]),
               (405,), "POST /ws")
    checks.run("PUT on the ws path -> 405", expect_status, port,
               b"PUT /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", (405,), "PUT /ws")
    checks.run("plain GET on the ws path (no Upgrade) -> 426", expect_status, port,
               b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (426,), "GET /ws without Upgrade")
    checks.run("missing Sec-WebSocket-Key -> 400", expect_status, port,
               handshake_request(key=None), (400,), "upgrade without key")
    checks.run("invalid Sec-WebSocket-Key (not base64) -> 400", expect_status, port,
               handshake_request(key="this is not base64!!"), (400,), "upgrade with key 'this is not base64!!'")
    checks.run("Sec-WebSocket-Key of 8 bytes -> 400", expect_status, port,
               handshake_request(key="AAAAAAAAAAA="), (400,), "upgrade with an 8-byte key")

    # RFC 6455 4.2.2 suggests 426 + Sec-WebSocket-Version for a version the server does not
    # speak; 400 is what the brief asks for. Either is accepted, 426 must name version 13.
    def bad_version(version, what):
        r = expect_status(port, handshake_request(key=make_key(), version=version), (400, 426), what)
        if r.status == 426:
            check("13" in r.headers.get("sec-websocket-version", ""),
                  f"{what}: 426 without 'Sec-WebSocket-Version: 13': {r!r}")
    checks.run("missing Sec-WebSocket-Version -> 400", bad_version, None, "upgrade without version")
    checks.run("Sec-WebSocket-Version: 8 -> 400 (or 426 + version)", bad_version, "8",
               "upgrade with version 8")

    def healthz():
        r = expect_status(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                          (200,), "GET /healthz")
        log(f"    /healthz: {r.status_line!r} body {short(r.body, 60)}")
    checks.run("GET /healthz -> 200", healthz)

    def valid_upgrade():
        ws = RawWS(port)  # checks 101 and Sec-WebSocket-Accept
        ws.send_text('{"op":"ping"}')
        t = ws.recv_text(10)
        check(is_event(t) and '"pong"' in t, f"expected a pong event, got {short(t)}")
        ws.close_socket()
    checks.run("valid upgrade -> 101 with the right Sec-WebSocket-Accept", valid_upgrade)


# ---------------------------------------------------------------------------------------------
# Strict HTTP (docs/security.md): the same single answer however TCP splits the request

def answers_to(port, request: bytes, byte_by_byte: bool):
    """Every status line the server sends for `request` until it closes (or 5 s pass)."""
    s = tcp_connect(port, timeout=10)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if byte_by_byte:
            for i in range(len(request)):
                if send_all_tolerant(s, request[i:i + 1]):
                    break
                time.sleep(0.0005)
        else:
            send_all_tolerant(s, request)
        data, ended = recv_until_closed(s, 5)
    finally:
        s.close()
    return [line for line in data.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")], ended


def strict_http_checks(port, checks: Checks):
    def one_answer(request: bytes, status: int):
        for split in (False, True):
            how = "byte by byte" if split else "in one write"
            lines, ended = answers_to(port, request, split)
            check(len(lines) == 1 and lines[0].startswith(b"HTTP/1.1 %d" % status),
                  f"{how}: expected exactly one HTTP {status} answer, got {lines} ({ended}); "
                  f"sent {short(request)}")
            check(ended in ("eof", "reset"), f"{how}: not closed after the {status} ({ended})")

    up = handshake_request(key=make_key()).removesuffix(b"\r\n")
    cases = [
        ("GET with a chunked body (a second request inside) -> one 400",
         b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"2d\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\r\n0\r\n\r\n"),
        ("GET with Content-Length: 5 -> one 400",
         b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
        ("upgrade with a chunked body -> 400, not 101", up + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("upgrade with Content-Length -> 400, not 101", up + b"Content-Length: 4\r\n\r\nabcd"),
        ("bare LF line ends -> 400", b"GET /healthz HTTP/1.1\nHost: x\n\n"),
        ("obs-fold -> 400", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n"),
        ("whitespace before the colon -> 400", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("two Host headers -> 400", b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
        ("upgrade with two Host headers -> 400", up + b"Host: evil.example\r\n\r\n"),
    ]
    for what, request in cases:
        checks.run(what, one_answer, request, 400)

    def healthz_both_ways():
        for split in (False, True):
            lines, ended = answers_to(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                      split)
            check(lines == [b"HTTP/1.1 200 OK"], f"/healthz (split={split}): expected one 200, got {lines}")
    checks.run("a clean GET /healthz: one 200 in one write and byte by byte", healthz_both_ways)

    def since_2_64():
        ws = RawWS(port)
        try:
            ws.send_text('{"op":"subscribe","args":["big"],"since":{"big":18446744073709551616}}')
            t = ws.recv_text(10)
            check(is_event(t) and '"code":4002' in t, f"since of 2^64: expected error 4002, got {short(t)}")
        finally:
            ws.close_socket()
    checks.run("since of 2^64 -> error 4002", since_2_64)


# ---------------------------------------------------------------------------------------------
# WebSocket level

def expect_ws_close(port, frames, expected_code: int, what: str):
    ws = RawWS(port)
    try:
        send_err = None
        for f in frames:
            send_err = ws.send_raw(f) or send_err
        code, reason = ws.expect_close(10, what + (f" (send failed: {send_err})" if send_err else ""))
        check(code == expected_code,
              f"{what}: expected close code {expected_code}, got {code} (reason {reason!r})")
        log(f"    close {code} {reason!r}")
        ws.send_frame(OP_CLOSE, close_payload(expected_code))
        how = ws.wait_eof(10)
        check(how in ("eof", "reset"),
              f"{what}: TCP connection still open 10 s after the closing handshake")
    finally:
        ws.close_socket()


def ws_checks(port, checks: Checks):
    T = OP_TEXT
    checks.run("unmasked client frame -> 1002", expect_ws_close, port,
               [build_frame(T, b'{"op":"ping"}', mask=False)], 1002, "unmasked text frame")
    big = b'{"op":"ping","pad":"' + b"y" * (MAX_MESSAGE + 40000) + b'"}'
    checks.run(f"frame over --max-message-bytes {MAX_MESSAGE} -> 1009", expect_ws_close, port,
               [build_frame(T, big)], 1009, f"{len(big)}-byte text frame")
    third = len(big) // 3 + 1
    frags = [big[i:i + third] for i in range(0, len(big), third)]
    checks.run("fragmented message over --max-message-bytes -> 1009", expect_ws_close, port,
               [build_frame(T if i == 0 else OP_CONT, f, fin=(i == len(frags) - 1))
                for i, f in enumerate(frags)], 1009,
               f"{len(big)}-byte text message in {len(frags)} fragments of <= {third}")
    checks.run("invalid UTF-8 in a text message -> 1007", expect_ws_close, port,
               [build_frame(T, b'{"op":"ping","x":"\xff\xfe\xc3"}')], 1007, "text frame with 0xFF 0xFE")
    checks.run("invalid UTF-8 across fragments -> 1007", expect_ws_close, port,
               [build_frame(T, b'{"op":"ping","x":"\xe2\x82', fin=False),
                build_frame(OP_CONT, b'\x28"}')], 1007, "text message E2 82 28 split over fragments")
    for code in (999, 1005, 1006, 1015):
        checks.run(f"close frame with code {code} -> 1002", expect_ws_close, port,
                   [build_frame(OP_CLOSE, close_payload(code))], 1002, f"client close {code}")
    checks.run("close frame with a 1-byte payload -> 1002", expect_ws_close, port,
               [build_frame(OP_CLOSE, b"\x03")], 1002, "1-byte close payload")
    checks.run("normal close 1000 is echoed", expect_ws_close, port,
               [build_frame(OP_CLOSE, close_payload(1000, b"bye"))], 1000, "client close 1000")
    checks.run("fragmented ping (FIN=0) -> 1002", expect_ws_close, port,
               [build_frame(OP_PING, b"frag", fin=False), build_frame(OP_CONT, b"ment")], 1002,
               "ping with FIN=0")
    checks.run("ping with a 126-byte payload -> 1002", expect_ws_close, port,
               [build_frame(OP_PING, b"p" * 126)], 1002, "control frame over 125 bytes")
    checks.run("RSV1 set without an extension -> 1002", expect_ws_close, port,
               [build_frame(T, b'{"op":"ping"}', rsv=4)], 1002, "text frame with RSV1")
    checks.run("reserved opcode 0x3 -> 1002", expect_ws_close, port,
               [build_frame(0x3, b"x")], 1002, "opcode 3")
    checks.run("continuation without a message -> 1002", expect_ws_close, port,
               [build_frame(OP_CONT, b'{"op":"ping"}')], 1002, "lone continuation frame")
    checks.run("new text frame inside a fragmented message -> 1002", expect_ws_close, port,
               [build_frame(T, b'{"op":', fin=False), build_frame(T, b'{"op":"ping"}')], 1002,
               "text frame while a fragmented message is open")

    def fragmented_ping_op():
        ws = RawWS(port)
        try:
            ws.send_frame(T, b'{"op"', fin=False)
            ws.send_frame(OP_CONT, b':"pi', fin=False)
            ws.send_frame(OP_PING, b"between")  # control frames may be interleaved
            ws.send_frame(OP_CONT, b'ng"}', fin=True)
            # the pong frame and the pong event may come in either order
            pong_frame, pong_event = None, None
            while pong_frame is None or pong_event is None:
                fin, op, payload = ws.recv_frame(10)
                if op == OP_PONG and pong_frame is None:
                    pong_frame = payload
                elif op == OP_TEXT and fin and pong_event is None:
                    pong_event = payload.decode("utf-8", "replace")
                else:
                    fail(f"unexpected frame opcode {op} fin {fin}: {short(payload)}")
            check(pong_frame == b"between",
                  f"ping interleaved in a fragmented message: pong payload {pong_frame!r}, expected b'between'")
            check(is_event(pong_event) and '"pong"' in pong_event,
                  f'fragmented {{"op":"ping"}}: expected a pong event, got {short(pong_event)}')
        finally:
            ws.close_socket()
    checks.run("fragmented text message reassembled (ping interleaved)", fragmented_ping_op)


def handshake_timeout_checks(port, checks: Checks):
    def silent_client():
        s = tcp_connect(port, timeout=10)
        try:
            t0 = time.monotonic()
            data, how = b"", None
            s.settimeout(10)
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        how = "eof"
                        break
                    data += chunk
            except socket.timeout:
                how = "timeout"
            except ConnectionResetError:
                how = "reset"
            check(how in ("eof", "reset"), f"a client that sent nothing was not disconnected "
                                           f"within 10 s (--handshake-timeout-ms {HANDSHAKE_TIMEOUT_MS})")
            log(f"    silent client closed ({how}) after {time.monotonic() - t0:.2f} s, got {short(data, 60)}")
        finally:
            s.close()
    checks.run("client that sends nothing is disconnected", silent_client)

    def stalled_client():
        s = tcp_connect(port, timeout=10)
        try:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            t0 = time.monotonic()
            data, how = b"", None
            s.settimeout(10)
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        how = "eof"
                        break
                    data += chunk
            except socket.timeout:
                how = "timeout"
            except ConnectionResetError:
                how = "reset"
            check(how in ("eof", "reset"), f"a client that stopped mid-handshake was not disconnected "
                                           f"within 10 s (--handshake-timeout-ms {HANDSHAKE_TIMEOUT_MS})")
            check(not data.startswith(b"HTTP/1.1 101"), f"stalled client got {short(data)}")
            log(f"    stalled client closed ({how}) after {time.monotonic() - t0:.2f} s, got {short(data, 60)}")
        finally:
            s.close()
    checks.run("client that stops mid-handshake is disconnected", stalled_client)

    def upgraded_not_cut():
        ws = RawWS(port)
        try:
            time.sleep(3 * HANDSHAKE_TIMEOUT_MS / 1000)
            ws.send_text('{"op":"ping"}')
            t = ws.recv_text(10)
            check(is_event(t) and '"pong"' in t, f"expected a pong event, got {short(t)}")
        finally:
            ws.close_socket()
    checks.run("an upgraded session outlives the handshake timeout", upgraded_not_cut)


async def final_checks(srv, checks: Checks):
    port = srv.port

    async def fragmented_subscribe_and_normal_client():
        raw = RawWS(port)
        try:
            raw.send_frame(OP_TEXT, b'{"op":"subscribe","ar', fin=False)
            raw.send_frame(OP_CONT, b'gs":["frag"]}', fin=True)
            t = await asyncio.to_thread(raw.recv_text, 10)
            check(is_event(t) and '"subscribe"' in t and '"frag"' in t,
                  f"subscribe sent in two fragments: expected an ack for 'frag', got {short(t)}")
            c = await WsClient.open(port, "/ws", "final websockets client", compression=None)
            await c.subscribe("frag")
            await srv.arequire_subscribers(2, 10000)
            await srv.apublish("frag", 10, 500)
            await collect_topic_data(c, {"frag": [(i, 500) for i in range(1, 11)]}, 20)

            def raw_read():
                for seq in range(1, 11):
                    t = raw.recv_text(10)
                    while is_event(t):
                        t = raw.recv_text(10)
                    check_payload(t, "frag", seq, 500, "raw client subscribed in fragments")
            await asyncio.to_thread(raw_read)
            await c.close()
        finally:
            raw.close_socket()
    await checks.arun("after all of it: fragmented subscribe and a normal client both receive",
                      fragmented_subscribe_and_normal_client)


async def body(args):
    srv = Server(args.server, ["--handshake-timeout-ms", HANDSHAKE_TIMEOUT_MS,
                               "--max-message-bytes", MAX_MESSAGE])
    checks = Checks()
    await asyncio.to_thread(http_checks, srv.port, checks)
    check(srv.alive(), "server died during the HTTP checks: " + srv.describe_death())
    await asyncio.to_thread(strict_http_checks, srv.port, checks)
    check(srv.alive(), "server died during the strict HTTP checks: " + srv.describe_death())
    await asyncio.to_thread(ws_checks, srv.port, checks)
    check(srv.alive(), "server died during the WebSocket checks: " + srv.describe_death())
    await asyncio.to_thread(handshake_timeout_checks, srv.port, checks)
    await final_checks(srv, checks)
    check(srv.alive(), "server died: " + srv.describe_death())
    st = await srv.astats()
    log(f"stats at the end: {st}")
    checks.finish()


if __name__ == "__main__":
    run_test("bad_input", body)

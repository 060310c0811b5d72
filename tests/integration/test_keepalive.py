#!/usr/bin/python3
"""Keepalive ping and idle timeout.

  /usr/bin/python3 tests/integration/test_keepalive.py --server build/tests/integration/fanout-test-server

The server runs with --ping-interval-ms 300 --idle-timeout-ms 1500. A raw client that sends nothing
and answers no ping must receive a WebSocket ping, then a close frame with 1001 once it has been
silent for the idle timeout. A client that answers pings stays open well past the timeout and still
receives published messages.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (OP_CLOSE, OP_PING, OP_PONG, RawWS, Server, check, close_payload,  # noqa: E402
                            parse_close, run_test)


def body(args):
    srv = Server(args.server, ["--ping-interval-ms", "300", "--idle-timeout-ms", "1500"])
    silent = RawWS(srv.port, path="/ws?subscribe=k")
    lively = RawWS(srv.port, path="/ws?subscribe=k")
    srv.require_subscribers(2)

    # The silent client: a ping arrives, then (no pong) a 1001 close after the idle timeout.
    start = time.monotonic()
    saw_ping, close = False, None
    while time.monotonic() - start < 10 and close is None:
        fin, op, payload = silent.recv_frame(10)
        if op == OP_PING:
            saw_ping = True
        elif op == OP_CLOSE:
            close = parse_close(payload)
    check(saw_ping, "silent client: no ping from the server before the close")
    check(close is not None and close[0] == 1001, f"silent client: expected close 1001, got {close}")
    silent.send_frame(OP_CLOSE, close_payload(1001))

    # The lively client answered every ping (recv_message does) and is still served.
    deadline = time.monotonic() + 3
    pings = 0
    while time.monotonic() < deadline:
        try:
            fin, op, payload = lively.recv_frame(max(0.01, deadline - time.monotonic()))
        except Exception:
            break
        check(op != OP_CLOSE, f"lively client was closed: {parse_close(payload)}")
        if op == OP_PING:
            pings += 1
            lively.send_frame(OP_PONG, payload)
    check(pings >= 2, f"lively client: expected repeated pings over 3 s, got {pings}")
    srv.publish("k", 3, 100)
    got = [lively.recv_text(10) for _ in range(3)]
    check(all('"topic":"k"' in g for g in got), f"lively client did not get the messages: {got}")
    srv.quit()


if __name__ == "__main__":
    run_test("keepalive", body)

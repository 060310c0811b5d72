#!/usr/bin/python3
"""Keepalive ping and idle timeout.

  /usr/bin/python3 tests/integration/test_keepalive.py --server build/tests/integration/fanout-test-server

The server runs with --ping-interval-ms 300 --idle-timeout-ms 1500. A raw client that sends nothing
and answers no ping must receive a WebSocket ping, then a close frame with 1001 once it has been
silent for the idle timeout. A client that answers pings stays open well past the timeout and still
receives published messages.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (OP_CLOSE, OP_PING, OP_PONG, RawWS, Server, check, close_payload,  # noqa: E402
                            parse_close, run_test)


def answer_pings(ws: RawWS, stop: threading.Event, result: dict):
    """Answers every ping until `stop`; records pings, data and any close."""
    result.update(pings=0, data=[], close=None)
    while not stop.is_set():
        try:
            fin, op, payload = ws.recv_frame(0.1)
        except socket.timeout:
            continue
        except Exception as e:  # connection ended
            result["error"] = repr(e)
            return
        if op == OP_PING:
            result["pings"] += 1
            ws.send_frame(OP_PONG, payload)
        elif op == OP_CLOSE:
            result["close"] = parse_close(payload)
            return
        elif not payload.startswith(b'{"event"'):
            result["data"].append(payload)


def body(args):
    srv = Server(args.server, ["--ping-interval-ms", "300", "--idle-timeout-ms", "1500"])
    silent = RawWS(srv.port, path="/ws?subscribe=k")
    lively = RawWS(srv.port, path="/ws?subscribe=k")
    srv.require_subscribers(2)
    # The lively client answers pings from the start, on its own thread.
    stop, lively_result = threading.Event(), {}
    responder = threading.Thread(target=answer_pings, args=(lively, stop, lively_result), daemon=True)
    responder.start()

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

    # Well past the idle timeout, the lively client is still open and still served.
    time.sleep(2)
    srv.publish("k", 3, 100)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(lively_result.get("data", [])) < 3 and responder.is_alive():
        time.sleep(0.05)
    stop.set()
    responder.join(5)
    check(lively_result.get("close") is None and "error" not in lively_result,
          f"lively client was closed: {lively_result.get('close')} {lively_result.get('error', '')}")
    check(lively_result["pings"] >= 2, f"lively client: expected repeated pings, got {lively_result['pings']}")
    got = [bytes(d).decode() for d in lively_result["data"]]
    check(len(got) == 3 and all('"topic":"k"' in g for g in got), f"lively client did not get the messages: {got}")
    srv.quit()


if __name__ == "__main__":
    run_test("keepalive", body)

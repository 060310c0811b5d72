#!/usr/bin/python3
"""Memory per connection with and without a Gateway (docs/benchmarks.md, "Gateway: memory per connection").

  /usr/bin/python3 bench/gateway_memory.py --server build/rel/tests/integration/fanout-test-server [--bind]

Opens N idle connections (each subscribed to two topics) on fanout-test-server, once plain and once
with --gateway, and reports the growth of RSS and of the heap in use per connection. With --bind each
gateway connection is also bound to its own user (test-only /gw/bind route), which gives it an identity.
"""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from fanout_testlib import RawWS, Server, base_parser, run_test  # noqa: E402

N = 3000
WARM = 200


def body(args):
    for gw in (False, True):
        extra = ["--gateway", "n1"] if gw else []
        s = Server(args.server, ["--shards", 2, "--subscribe-timeout-ms", 0, "--idle-timeout-ms", 0,
                                 "--ping-interval-ms", 0] + extra, name="gateway" if gw else "plain")
        warm = [RawWS(s.port, "/ws?subscribe=a,b") for _ in range(WARM)]  # allocator and tables warmed
        time.sleep(0.5)
        before = s.stats()
        conns = []
        for i in range(N):
            c = RawWS(s.port, "/ws?subscribe=a,b")
            if gw and args.bind:
                hello = {}
                while "client_id" not in hello:
                    hello = json.loads(c.recv_text())
                urllib.request.urlopen(
                    f"http://127.0.0.1:{s.port}/gw/bind?client={hello['client_id']}&user=user{i}").read()
            conns.append(c)
        s.wait_subscribers(2 * (N + WARM))
        time.sleep(0.5)
        after = s.stats()
        print(f"gateway={gw} bind={bool(gw and args.bind)}: "
              f"rss {(after['rss_kb'] - before['rss_kb']) * 1024 / N:.0f} B/conn, "
              f"heap {(after['heap_in_use_bytes'] - before['heap_in_use_bytes']) / N:.0f} B/conn", flush=True)
        for c in conns + warm:
            c.close_socket()
        s.quit()


if __name__ == "__main__":
    p = base_parser("gateway memory")
    p.add_argument("--bind", action="store_true", help="bind every gateway connection to a user")
    run_test("gateway_memory", body, p)

#!/usr/bin/python3
"""fanout-relay as a command: --version, the default run, --check, a broken configuration, SIGTERM.

  /usr/bin/python3 tests/integration/test_relay_cli.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Checks: `--version` exits 0 printing one line `fanout-relay X.Y.Z (features: ws ...)` whose version
is the CMake project's (read from CMakeLists.txt here); `fanout-relay --listen 127.0.0.1:0` and nothing else runs the bundled simulator and relays
it: a client subscribed to tickers:BTC-USDT gets that stream, seq +1, the bytes a client connected
straight to the bundled simulator gets; `--check --config examples/relay/relay.toml` exits 0; a
file with a TOML syntax error exits 2 naming the file and the line, one with an out-of-range value
exits 2 naming the file and the key, one with an unknown key exits 2 naming the key and its table;
SIGTERM makes the relay exit 0 after closing its clients with
1012 (drain, with retry_after_ms in the reason).
"""

import asyncio
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (REPO_DIR, Checks, Relay, check, check_no_stray_events,  # noqa: E402
                           check_open, close_all, log, relay_client, run_command, run_relay_test,
                           sim_client, write_file)


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-cli-") as tmp:
        await run(args, checks, tmp)
    checks.finish()


async def run(args, checks: Checks, tmp: str):
    async def check_sample():
        sample = os.path.join(REPO_DIR, "examples", "relay", "relay.toml")
        # Its ports (8080, 8081) may be taken on a shared machine, and --check binds them: any free ones.
        rc, out, err = run_command([args.relay, "--check", "--config", sample, "--listen", "127.0.0.1:0",
                                    "--admin-listen", "127.0.0.1:0"])
        check(rc == 0, f"--check --config {sample}: exit {rc}; stdout {out!r} stderr {err!r}")
        log(f"    {out.strip()}")

    async def syntax_error():
        path = write_file(tmp, "broken.toml",
                          '[server]\nlisten = ["127.0.0.1:0"]\nshards = = 2\n')
        for argv in ([args.relay, "--check", "--config", path], [args.relay, "--config", path]):
            rc, out, err = run_command(argv)
            check(rc == 2, f"{' '.join(argv[1:])}: exit {rc}, expected 2; stderr {err!r}")
            check(re.search(re.escape(path) + r"\D*:3\b", err) is not None,
                  f"{' '.join(argv[1:])}: the message does not name {path} line 3: {err!r}")
        log(f"    {err.strip()}")

    async def out_of_range():
        # Once wrapped silently through a narrowing cast: port 70000 served on 4464.
        path = write_file(tmp, "range.toml", '[simulator]\nenabled = true\nport = 70000\n')
        rc, out, err = run_command([args.relay, "--check", "--config", path])
        check(rc == 2 and path in err and "simulator.port" in err,
              f"[simulator] port = 70000: exit {rc}, expected 2 naming the file and the key; "
              f"stdout {out!r} stderr {err!r}")
        log(f"    {err.strip()}")

    async def unknown_keys():
        # Every key is in config.cpp's tables: a misspelt one is an error, not a silent default.
        cases = [('[limits]\npolcy = "conflate"\n', "unknown key 'polcy' in [limits] (did you mean 'policy'?)"),
                 ('shard = 2\n', "unknown key 'shard' in the top level"),
                 ('[[upstream]]\nurls = ["ws://127.0.0.1:1/ws"]\n[upstream.route]\ntopik = "x"\n',
                  "unknown key 'topik' in [upstream.route]"),
                 ('[[sink]]\ntype = "journal"\npath = "j.jsonl"\ntable = "t"\n',
                  "unknown key 'table' in [[sink]] 'journal' (a journal sink)")]
        for i, (text, message) in enumerate(cases):
            path = write_file(tmp, f"unknown{i}.toml", text)
            rc, out, err = run_command([args.relay, "--check", "--config", path])
            check(rc == 2 and path in err and message in err,
                  f"{text!r}: exit {rc}, expected 2 with {path} and {message!r}; stderr {err!r}")
            log(f"    {err.strip()}")

    async def version():
        with open(os.path.join(REPO_DIR, "CMakeLists.txt")) as f:
            project = re.search(r"project\(fanout VERSION (\d+\.\d+\.\d+)", f.read()).group(1)
        rc, out, err = run_command([args.relay, "--version"])
        check(rc == 0, f"--version: exit {rc}, expected 0; stdout {out!r} stderr {err!r}")
        m = re.fullmatch(r"fanout-relay (\S+) \(features: ws( tls)?( redis)?( postgres)?( proxy)?\)\n", out)
        check(m is not None, f"--version: unexpected output {out!r}")
        if m:
            check(m.group(1) == project,
                  f"--version says {m.group(1)}, the CMake project version is {project}")
        log(f"    {out.strip()}")

    await checks.arun("--version: the project version, exit 0", version)
    await checks.arun("--check --config examples/relay/relay.toml exits 0", check_sample)
    await checks.arun("syntax error: exit 2 with file and line", syntax_error)
    await checks.arun("value out of range: exit 2 with file and key", out_of_range)
    await checks.arun("unknown key: exit 2 naming the key and its table", unknown_keys)

    relay = Relay(args.relay, ["--listen", "127.0.0.1:0"], name="relay-default")
    clients = []

    async def default_run():
        _, line = await relay.wait_line(r"feed simulator on ws://127\.0\.0\.1:(\d+)/ws",
                                        what="the bundled simulator")
        sim_port = int(re.search(r"127\.0\.0\.1:(\d+)/ws", line).group(1))
        _, live = await relay.wait_line(Relay.live_re("simulator"), what="simulator upstream live")
        log(f"    {live}")
        # The bundled simulator is a feed like any other: a client straight to it is the reference.
        ref = await sim_client(sim_port, [("tickers", "BTC-USDT"), ("trades", "ETH-USDT")],
                               "direct-client")
        clients.append(ref)
        a = await relay_client(relay.port, ["tickers:BTC-USDT"], "client-A(url)", via_url=True)
        b = await relay_client(relay.port, ["trades:ETH-USDT", "tickers:ETH-USDT"],
                               "client-B(json)")
        clients.extend([a, b])
        await a.count_each(5)
        await b.count_each(3)
        for c in (a, b):
            for t in c.topics:
                c.check_contiguous(t)
        for t in a.topics | {"trades:ETH-USDT"}:
            c = a if t in a.topics else b
            await ref.seq_at_least(t, c.seqs(t)[-1])
            c.check_same_bytes(ref, t)
        check_no_stray_events(a, b)

    async def sigterm():
        a, b = clients[1], clients[2]
        check_open(a, b, when="before SIGTERM")
        rc = await relay.aterminate()
        for c in (a, b):
            try:
                await asyncio.wait_for(c.client.closed.wait(), 10)
            except asyncio.TimeoutError:
                pass
            check(c.client.closed.is_set(), f"{c.name}: still open after the relay exited")
            check(c.client.close_code == 1012,
                  f"{c.name}: closed with {c.client.close_code} {c.client.close_reason!r} "
                  f"on SIGTERM, expected 1012 (drain)")
        check(rc == 0, f"exit {rc} on SIGTERM; " + relay.describe_death())
        await relay.wait_line(r"\bstopped$", what="the last log line")

    await checks.arun("default run: bundled simulator relayed to clients", default_run)
    if len(clients) == 3:  # the clients to watch exist
        await checks.arun("SIGTERM: clients closed with 1012, exit 0", sigterm)
    await close_all(*clients)


if __name__ == "__main__":
    run_relay_test("relay_cli", body)

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
`--help` names exactly the flags docs/relay.md documents (both come from config.cpp's flag table);
flags override the file, and a one-valued flag given twice takes the last; SIGTERM makes the relay exit 0 after closing its clients with
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

    async def help_matches_docs():
        rc, out, err = run_command([args.relay, "--help"])
        check(rc == 0, f"--help: exit {rc}, expected 0; stderr {err!r}")
        with open(os.path.join(REPO_DIR, "docs", "relay.md")) as f:
            section = f.read().split("## Flags", 1)[1].split("\n## ", 1)[0]
        flag = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
        helped, documented = set(flag.findall(out)), set(flag.findall(section))
        check(helped == documented, f"--help and docs/relay.md differ: only in --help {sorted(helped - documented)}, "
                                    f"only in the docs {sorted(documented - helped)}")
        log(f"    {len(helped)} flags, each in --help and in docs/relay.md")

    async def flags_override_file():
        path = write_file(tmp, "flags.toml", '[server]\npath = "/file"\n[limits]\npolicy = "drop_newest"\n'
                                             'max_queue_bytes = 5000\n')
        r = Relay(args.relay, ["--config", path, "--listen", "127.0.0.1:0", "--path", "/first", "--path", "/last",
                               "--policy", "conflate"], name="relay-flags")
        try:
            _, line = await r.wait_line(r"serving ws://", what="the listener line")
            check(re.search(r"/last \(policy conflate, queue 5000 bytes", line) is not None,
                  f"expected path /last (the last --path, not the file's), policy conflate (the flag's) and the "
                  f"file's queue limit: {line!r}")
            log(f"    {line.strip()}")
        finally:
            await r.aterminate()

    await checks.arun("--version: the project version, exit 0", version)
    await checks.arun("--help lists the flags docs/relay.md documents", help_matches_docs)
    await checks.arun("flags override the file; the last of a repeated flag wins", flags_override_file)
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

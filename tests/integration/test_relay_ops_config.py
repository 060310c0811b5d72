#!/usr/bin/python3
"""fanout-relay operations, before and around start: --check, FANOUT_* variables, log formats and levels.

  /usr/bin/python3 tests/integration/test_relay_ops_config.py --server build/tests/integration/fanout-test-server \\
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Checks: `--check` exits 1 naming the key and the problem, one line each, for a TLS certificate that
is not PEM, a key that does not match its certificate, a listen port and an admin port held by
another socket, upstream URLs with a bad scheme or no host, and a journal sink in a directory
that does not exist; all at once gives one line per
problem; a good configuration exits 0 with "configuration ok"; a misspelt flag exits 2 naming the
nearest one. FANOUT_SERVER_LISTEN and
FANOUT_ADMIN_LISTEN win over the file and lose to the flags; FANOUT_LOG_LEVEL wins over [log] level
and loses to --log-level; an unknown FANOUT_* is a warning naming the nearest variable; a bad value
exits 2 naming the variable; every key of examples/relay/relay.toml's plain tables, set through its
variable, passes --check. `--log-format json`: every line is a JSON object with ts (RFC 3339, UTC,
ending in Z), level and msg, also for messages with quotes, backslashes and bytes that are not UTF-8
(the log stays UTF-8); `--log-level warn` shows
warnings and nothing below.
"""

import datetime
import json
import os
import re
import signal
import socket
import sys
import tempfile
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (HOST, REPO_DIR, Checks, Relay, check, log, run_command,  # noqa: E402
                           run_relay_test, write_file)
from test_tls import make_certs  # noqa: E402

LEVELS = {"error", "warn", "info", "debug"}
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def held_port() -> socket.socket:
    """A listening socket without SO_REUSEPORT: nobody else can bind its port."""
    s = socket.socket()
    s.bind((HOST, 0))
    s.listen()
    return s


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def env_with(**kw) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
    env.update({k: str(v) for k, v in kw.items()})
    return env


def check_ts(ts: str, where: str):
    check(TS_RE.match(ts) is not None, f"{where}: timestamp {ts!r} is not RFC 3339 UTC with Z")
    when = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    age = abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
    check(age < 120, f"{where}: timestamp {ts} is {age:.0f} s from now (not UTC?)")


async def body(args):
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="fanout-relay-ops-") as tmp:
        await run(args, checks, tmp)
    checks.finish()


async def run(args, checks: Checks, tmp: str):
    for d in ("a", "b"):
        os.makedirs(os.path.join(tmp, d))
    a, b = make_certs(os.path.join(tmp, "a")), make_certs(os.path.join(tmp, "b"))  # two CAs, two certs
    quiet = ["--listen", f"{HOST}:0", "--admin-listen", f"{HOST}:0"]

    def check_fails(argv, wanted: list[str], what: str, env=None) -> str:
        rc, out, err = run_command([args.relay, "--check", *argv], env=env)
        check(rc == 1, f"{what}: --check exit {rc}, expected 1; stdout {out!r} stderr {err!r}")
        lines = err.strip().split("\n")
        for w in wanted:
            check(any(re.search(w, ln) for ln in lines), f"{what}: no line matching {w!r} in {err!r}")
        check("configuration ok" not in out, f"{what}: said ok: {out!r}")
        log(f"    {err.strip()}")
        return err

    async def bad_tls():
        garbage = write_file(tmp, "garbage.pem", "not a certificate\n")
        tls = ["--listen-tls", f"{HOST}:0", *quiet]
        check_fails([*tls, "--tls-cert", garbage, "--tls-key", a["key"]],
                    [rf"^server\.tls_cert {re.escape(garbage)}: not a PEM certificate chain"], "garbage certificate")
        check_fails([*tls, "--tls-cert", a["cert"], "--tls-key", b["key"]],
                    [rf"^server\.tls_key {re.escape(b['key'])} does not match the certificate"], "key of another cert")
        missing = os.path.join(tmp, "missing.key")
        check_fails([*tls, "--tls-cert", a["cert"], "--tls-key", missing],
                    [rf"^server\.tls_key {re.escape(missing)}: cannot read: No such file"], "missing key")
        rc, out, err = run_command([args.relay, "--check", *tls, "--tls-cert", a["cert"], "--tls-key", a["key"]])
        check(rc == 0 and out.startswith("configuration ok"), f"good TLS files: exit {rc}, {out!r} {err!r}")

    async def port_in_use():
        s, t = held_port(), held_port()
        try:
            p, q = s.getsockname()[1], t.getsockname()[1]
            check_fails(["--listen", f"{HOST}:{p}", "--admin-listen", f"{HOST}:0"],
                        [rf"^server\.listen {HOST}:{p}: cannot listen: Address already in use"], "listen port held")
            check_fails(["--listen", f"{HOST}:0", "--admin-listen", f"{HOST}:{q}"],
                        [rf"^admin\.listen {HOST}:{q}: cannot listen: Address already in use"], "admin port held")
            check_fails(["--listen", "localhost:0", "--admin-listen", f"{HOST}:0"],
                        [r"^server\.listen localhost:0: cannot listen: 'localhost' is not an IP address"],
                        "a name, not an address")
        finally:
            s.close()
            t.close()

    async def bad_urls():
        check_fails([*quiet, "-u", "ftp://127.0.0.1:1/ws"],
                    [r"^upstream 'upstream' urls: .*ws:// or wss://.*ftp://127\.0\.0\.1:1/ws"], "ftp scheme")
        check_fails([*quiet, "-u", "ws://:80/ws"], [r"^upstream 'upstream' urls: .*no host"], "no host")

    async def bad_sink_path():
        path = write_file(tmp, "sink.toml", f'[[sink]]\ntype = "journal"\npath = "{tmp}/no/such/dir/j.jsonl"\n')
        check_fails(["--config", path, *quiet], [rf"^sink\.journal\.path {re.escape(tmp)}/no/such/dir/j\.jsonl: no directory"],
                    "a journal in a directory that does not exist")

    async def all_at_once():
        s = held_port()
        try:
            p = s.getsockname()[1]
            garbage = os.path.join(tmp, "garbage.pem")
            err = check_fails(["--listen", f"{HOST}:{p}", "--admin-listen", f"{HOST}:0", "--listen-tls", f"{HOST}:0",
                               "--tls-cert", garbage, "--tls-key", a["key"], "-u", "http://x/ws"],
                              [r"^server\.tls_cert ", rf"^server\.listen {HOST}:{p}: ", r"^upstream 'upstream' urls: ",
                               r"configuration has 3 problem\(s\)"], "three problems")
            check(len(err.strip().split("\n")) == 4, f"three problems: expected 3 lines and a total, got {err!r}")
        finally:
            s.close()

    async def unknown_flag():
        rc, out, err = run_command([args.relay, "--check", "--lisen", f"{HOST}:0"])
        check(rc == 2 and "--lisen" in err and "(did you mean '--listen'?)" in err,
              f"--lisen: exit {rc}, expected 2 suggesting --listen; stderr {err!r}")
        log(f"    {err.strip()}")

    await checks.arun("an unknown flag: exit 2 naming the nearest", unknown_flag)
    await checks.arun("--check: a TLS file that is not PEM, a key of another cert, a missing key", bad_tls)
    await checks.arun("--check: listen and admin ports in use, a host name", port_in_use)
    await checks.arun("--check: bad upstream URLs", bad_urls)
    await checks.arun("--check: a journal sink that cannot be written", bad_sink_path)
    await checks.arun("--check: every problem on its own line", all_at_once)

    async def env_overrides():
        p_file, p_env, p_flag, p_admin = free_port(), free_port(), free_port(), free_port()
        config = write_file(tmp, "env.toml", f'[server]\nlisten = ["{HOST}:{p_file}"]\n'
                                             f'[admin]\nlisten = "{HOST}:0"\n[log]\nlevel = "info"\n')
        env = env_with(FANOUT_SERVER_LISTEN=f"{HOST}:{p_env}", FANOUT_ADMIN_LISTEN=f"{HOST}:{p_admin}",
                       FANOUT_LOG_LEVEL="debug", FANOUT_SERVER_LISTN="1")
        r = Relay(args.relay, ["--config", config], name="relay-env", env=env)
        try:
            check(r.port == p_env, f"FANOUT_SERVER_LISTEN: serving on {r.port}, expected {p_env} (file {p_file})")
            check(r.admin_port == p_admin, f"FANOUT_ADMIN_LISTEN: admin on {r.admin_port}, expected {p_admin}")
            check(r.find(rf"serving ws://{HOST}:{p_file}/") is None, "the file's listener is served too")
            await r.wait_line(r" debug upstream simulator connecting to ", what="FANOUT_LOG_LEVEL=debug over the file")
            _, warn = await r.wait_line(r" warn environment: FANOUT_SERVER_LISTN is not a setting",
                                        what="the unknown variable's warning")
            check("did you mean FANOUT_SERVER_LISTEN?" in warn, f"no suggestion: {warn!r}")
            log(f"    {warn}")
        finally:
            check(await r.aterminate() == 0, "relay-env: exit code")
        r = Relay(args.relay, ["--config", config, "--listen", f"{HOST}:{p_flag}", "--log-level", "info"],
                  name="relay-env-flags", env=env)
        try:
            check(r.port == p_flag, f"--listen: serving on {r.port}, expected {p_flag} (env {p_env})")
            check(r.find(rf"serving ws://{HOST}:{p_env}/") is None, "the environment's listener is served too")
            await r.wait_line(Relay.live_re("simulator"), what="simulator live")
            check(r.find(r" debug ") is None, "--log-level info lost to FANOUT_LOG_LEVEL=debug")
        finally:
            check(await r.aterminate() == 0, "relay-env-flags: exit code")
        rc, out, err = run_command([args.relay, "--check", *quiet], env=env_with(FANOUT_SERVER_SHARDS="100"))
        check(rc == 2 and "FANOUT_SERVER_SHARDS" in err and "server.shards must be 0..64" in err,
              f"FANOUT_SERVER_SHARDS=100: exit {rc}, expected 2 naming it; {err!r}")
        rc, out, err = run_command([args.relay, "--check", "--listen", f"{HOST}:0"],
                                   env=env_with(FANOUT_ADMIN_LISTEN="off", FANOUT_SERVER_SHARDS="2",
                                                FANOUT_LIMITS_POLICY="conflate"))
        check(rc == 0 and "admin" not in out, f"FANOUT_ADMIN_LISTEN=off etc.: exit {rc}, {out!r} {err!r}")

    await checks.arun("FANOUT_* over the file, under the flags; unknown ones warned", env_overrides)

    async def every_sample_key():
        # The rule covers every key of the sample's plain tables: a table added to the file but not
        # to config.cpp's settable_keys() shows up here as "not a setting".
        with open(os.path.join(REPO_DIR, "examples", "relay", "relay.toml"), "rb") as f:
            sample = tomllib.load(f)

        def toml_text(v) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, list):
                return "[" + ",".join(json.dumps(x) for x in v) + "]"
            return str(v)  # numbers, and strings as they are (the value is a string when not TOML)
        env = env_with()
        for table, body in sample.items():
            if isinstance(body, dict):
                env.update({f"FANOUT_{table.upper()}_{k.upper()}": toml_text(v) for k, v in body.items()
                            if not isinstance(v, dict)})
            elif not isinstance(body, list):  # [[upstream]] and [[sink]] are not reachable this way
                env[f"FANOUT_{table.upper()}"] = toml_text(body)
        n = sum(k.startswith("FANOUT_") for k in env)
        rc, out, err = run_command([args.relay, "--check", *quiet], env=env)
        check(rc == 0 and "not a setting" not in err, f"{n} FANOUT_* from the sample: exit {rc}, {out!r} {err!r}")
        log(f"    {n} variables, one per key of the sample's plain tables: {out.strip()}")

    await checks.arun("every key of the sample's plain tables has its FANOUT_* variable", every_sample_key)

    async def json_logs():
        closed = free_port()
        # A URL with a quote and a backslash: the JSON lines must escape them.
        url = f'ws://{HOST}:{closed}/ws?q="x\\y"'
        # And a variable whose name is not UTF-8: its warning must still make a valid line.
        env = {k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith("FANOUT_")}
        env[b"FANOUT_\xffBAD"] = b"1"
        r = Relay(args.relay, [*quiet, "--log-format", "json", "--log-level", "debug", "--sim", "-u", url],
                  name="relay-json", env=env)
        try:
            await r.wait_line(r'"level":"warn".*upstream upstream down', what="the closed upstream's warning")
            os.kill(r.pid, signal.SIGHUP)
            await r.wait_line(r"SIGHUP: configuration reloaded", what="the reload line")
        finally:
            check(await r.aterminate() == 0, "relay-json: exit code")
        with open(r.stderr_file.name, "rb") as f:
            raw = f.read()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            check(False, f"the JSON log is not UTF-8: {e}")
        lines = r.lines()
        check(any("FANOUT_\ufffdBAD is not a setting" in json.loads(ln)["msg"] for ln in lines),
              "no warning for the non-UTF-8 variable, with U+FFFD for its byte")
        levels = set()
        for i, line in enumerate(lines):
            try:
                obj = json.loads(line)
            except ValueError as e:
                check(False, f"line {i} is not JSON ({e}): {line!r}")
            check(isinstance(obj, dict) and {"ts", "level", "msg"} <= obj.keys(), f"line {i}: {line!r}")
            check_ts(obj["ts"], f"line {i}")
            check(obj["level"] in LEVELS, f"line {i}: level {obj['level']!r}")
            levels.add(obj["level"])
        check(any(url in json.loads(ln)["msg"] for ln in lines), f"no line carries the URL {url!r} intact")
        check({"debug", "info", "warn"} <= levels, f"levels seen: {levels}")
        check(json.loads(lines[-1])["msg"] == "stopped", f"last line {lines[-1]!r}")
        log(f"    {len(lines)} lines, levels {sorted(levels)}; {lines[0]}")

    async def warn_level():
        r = Relay(args.relay, [*quiet, "--log-level", "warn", "-u", f"ws://{HOST}:{free_port()}/ws"],
                  name="relay-warn", wait_ready=False)
        try:
            await r.wait_line(r" warn upstream upstream down ", what="the upstream's warning")
        finally:
            check(await r.aterminate() == 0, "relay-warn: exit code")
        for line in r.lines():
            ts, level, _ = line.split(" ", 2)
            check_ts(ts, "text line")
            check(level in ("warn", "error"), f"--log-level warn printed {line!r}")

    await checks.arun("--log-format json: every line an object with ts (UTC, Z), level, msg", json_logs)
    await checks.arun("--log-level warn: nothing below warn; text lines in UTC", warn_level)


if __name__ == "__main__":
    run_relay_test("relay_ops_config", body)

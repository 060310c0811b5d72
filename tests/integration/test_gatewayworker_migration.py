#!/usr/bin/python3
"""examples/gatewayworker-migration end to end: PHP's built-in server runs backend.php behind the
relay's backend proxy, and push.php pushes through the server API, as a GatewayWorker app would.

Checked: a client without uid is refused 401 (onConnect); alice and bob are bound and joined to
room:lobby by the connect answer; alice's "say" reaches the whole room (sendToGroup); her
"whisper" reaches only bob (sendToUid) and she is told how many connections got it
(sendToClient); rpc whoami answers with her user and client id; push.php reaches one user, the
group, and both in one batch; bob leaving is announced to the room (onClose).

Skipped (exit 77) only when php is not installed; php without its curl module is a failure
(scripts/install-deps installs php-cli and php-curl).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import HOST, WsClient, check, fail, log, spawn  # noqa: E402
from relay_testlib import REPO_DIR, Relay, run_command, run_relay_test  # noqa: E402
from test_relay_proxy import expect_refused, rpc  # noqa: E402

EXAMPLE = os.path.join(REPO_DIR, "examples", "gatewayworker-migration")
API_KEY = "migration-test-key-0123456789"


def free_port() -> int:
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def wait_accepting(port: int, proc, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        check(proc.poll() is None, f"php -S exited with {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                fail(f"php -S not accepting on port {port} within {timeout} s")
            await asyncio.sleep(0.05)


async def next_of_type(client: WsClient, kind: str, timeout: float = 10) -> dict:
    """The next data message (chat JSON) of this type; others before it fail the test."""
    _, m = await client.next_data(timeout)
    d = json.loads(m)
    check(d.get("type") == kind, f"{client.name}: expected a {kind!r} message, got {m}")
    return d


async def body(args):
    php = shutil.which("php")
    if php is None:
        print("SKIP: gatewayworker_migration: php is not installed (apt-get install php-cli php-curl)", flush=True)
        sys.exit(77)
    rc, out, _ = run_command([php, "-m"])
    check(rc == 0 and "curl" in out.split(), "php has no curl module: apt-get install php-curl")

    tmp = tempfile.mkdtemp(prefix="fanout-migration-")
    php_port = free_port()
    key_file = os.path.join(tmp, "api-key")
    with open(key_file, "w") as f:
        f.write(API_KEY + "\n")
    config = os.path.join(tmp, "relay.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
listen = "127.0.0.1:0"

[api]
key_file = "{key_file}"

[proxy]
url = "http://127.0.0.1:{php_port}/fanout"
timeout_ms = 2000
""")
    relay = Relay(args.relay, ["--config", config])
    check(relay.admin_port is not None, "the relay has no admin listener")
    env = dict(os.environ, FANOUT_API_URL=f"http://127.0.0.1:{relay.admin_port}", FANOUT_API_KEY=API_KEY,
               PHP_CLI_SERVER_WORKERS="4")
    backend = spawn([php, "-S", f"{HOST}:{php_port}", os.path.join(EXAMPLE, "backend.php")], env=env,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await wait_accepting(php_port, backend)

    async def push(*argv) -> str:
        rc, out, err = await asyncio.to_thread(run_command, [php, os.path.join(EXAMPLE, "push.php"), *argv])
        check(rc == 0, f"push.php {argv}: exit {rc}: {err.strip()}")
        return out.strip()

    os.environ.update(FANOUT_API_URL=env["FANOUT_API_URL"], FANOUT_API_KEY=API_KEY)  # for push.php

    log("onConnect: no uid -> 401; alice and bob bound and in room:lobby")
    await expect_refused(relay.port, "/ws", 401, "anonymous")
    alice = await WsClient.open(relay.port, "/ws?uid=alice&room=lobby", name="alice")
    bob = await WsClient.open(relay.port, "/ws?uid=bob&room=lobby", name="bob")

    log("rpc whoami")
    _, d = await rpc(alice, 1, "whoami", "null")
    check(d.get("event") == "rpc" and d["data"]["user"] == "alice", f"whoami answered {d}")
    alice_id = d["data"]["client"]
    check(isinstance(alice_id, str) and alice_id, f"no client id in {d}")

    log("say -> the room (sendToGroup)")
    await alice.send('{"type":"say","text":"hi all"}')
    for c in (alice, bob):
        m = await next_of_type(c, "say")
        check(m == {"type": "say", "from": "alice", "text": "hi all"}, f"{c.name} got {m}")

    log("whisper -> bob only (sendToUid), alice told (sendToClient)")
    await alice.send('{"type":"whisper","to":"bob","text":"psst"}')
    m = await next_of_type(bob, "whisper")
    check(m["from"] == "alice" and m["text"] == "psst", f"bob got {m}")
    m = await next_of_type(alice, "sent")
    check(m == {"type": "sent", "to": "bob", "connections": 1}, f"alice got {m}")

    log("push.php: a user, the group, a batch")
    out = await push("user", "bob", '{"type":"notice","text":"hello bob"}')
    check(out == "delivered 1", f"push user: {out!r}")
    m = await next_of_type(bob, "notice")
    check(m["text"] == "hello bob", f"bob got {m}")
    out = await push("group", "room:lobby", '{"type":"notice","text":"to the room"}')
    check(out == "delivered 2", f"push group: {out!r}")
    for c in (alice, bob):
        m = await next_of_type(c, "notice")
        check(m["text"] == "to the room", f"{c.name} got {m}")
    out = await push("batch")
    check(out == "delivered 1 2", f"push batch: {out!r}")
    m = await next_of_type(alice, "notice")
    check(m["text"] == "batched to alice", f"alice got {m}")
    for c in (alice, bob):
        m = await next_of_type(c, "notice")
        check(m["text"] == "batched to the room", f"{c.name} got {m}")
    check(not bob.pending_data(), f"bob got more: {bob.pending_data()}")

    log("onClose: bob leaves, the room hears it")
    await bob.close()
    m = await next_of_type(alice, "left")
    check(m["user"] == "bob", f"alice got {m}")
    await alice.close()


if __name__ == "__main__":
    run_relay_test("gatewayworker_migration", body)

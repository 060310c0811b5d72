#!/usr/bin/python3
"""fanout-relay with [auth] and [[acl]]: identity (JWT) and access control, over real sockets.

  /usr/bin/python3 tests/integration/test_auth.py --server build/tests/integration/fanout-test-server \
      --relay build/examples/relay/fanout-relay --sim build/tools/feed-sim/fanout-feed-sim

Keys are made at test time: an HS256 secret, an RSA and a P-256 key pair (`openssl genpkey`); tokens
are signed with hmac/hashlib (HS256) and `openssl dgst` (RS256, ES256: its DER signature turned into
JWS r||s here). The simulator publishes the topics the rules are about (public tickers:*, the default
`authenticated` trades:*, user:{sub}, claim vip:*, token private:*, deny secret:*).

Checks:
  * each token source: Authorization: Bearer, the subprotocol list (the 101 echoes fanout.v1),
    ?token=, and {"op":"auth"} (also deferring ?subscribe= until it), each with a working subscribe;
  * refused at the upgrade with 401 and the reason: bad signature, expired, unknown kid, alg none,
    HS/RS confusion (HMAC keyed with the RSA public key), a non-Bearer scheme; a bad auth op gets
    error 4401 and close 4401; no auth message within auth_timeout_ms, or another op first: close 4401;
  * refresh: `expiring` arrives, a refresh (same sub) keeps the connection past the first exp; without
    refresh close 4410; a refresh for another sub: close 4403;
  * access rules over WebSocket (error 4401/4403) and HTTP snapshot/history (401/403; private cache)
    for public, authenticated, user, claim, token and deny;
  * Origin allow-list: 403 from elsewhere, 101 from the allowed origin and without Origin;
  * allow_anonymous: a token-less client reads public topics only, until it authenticates;
  * SIGHUP reloads the key file (new kid accepted, removed kid refused, the log says which), and a bad
    file keeps the keys in use;
  * headless Chromium connects with `new WebSocket(url, ["fanout.v1", "bearer." + token])` and gets
    data (skipped, with a note, only when /usr/bin/chromium is missing).
"""

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_testlib import (ROUTE, FeedSim, Relay, WsClient, check, declare_args, fail, log,  # noqa: E402
                           run_relay_test, spawn, subscribe_msg)

CHROMIUM = "/usr/bin/chromium"
STREAMS = [("tickers", "BTC-USDT"), ("trades", "ETH-USDT"), ("user", "alice"), ("user", "bob"),
           ("vip", "gold"), ("vip", "silver"), ("private", "room1"), ("private", "room2"), ("secret", "x")]
HS_SECRET = "integration-test-secret-0123456789abcdef"
GOOD_ORIGIN = "https://good.example"


# ---------------------------------------------------------------------------------------------- tokens

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_raw(der: bytes, n: int = 32) -> bytes:
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> r||s, n bytes each (RFC 7518 3.4)."""
    check(der[0] == 0x30, "openssl ECDSA signature is not a DER sequence")
    i = 3 if der[1] & 0x80 else 2
    out = b""
    for _ in range(2):
        check(der[i] == 0x02, "DER integer expected")
        length = der[i + 1]
        value = der[i + 2:i + 2 + length].lstrip(b"\0")
        out += value.rjust(n, b"\0")
        i += 2 + length
    return out


class Keys:
    def __init__(self, d: str):
        self.dir = d
        self.rsa = os.path.join(d, "rsa.pem")
        self.ec = os.path.join(d, "ec.pem")
        for path, opts in ((self.rsa, ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                           (self.ec, ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
            subprocess.run(["openssl", "genpkey", *opts, "-out", path], check=True, capture_output=True,
                           timeout=60)
            subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-out", path + ".pub"], check=True,
                           capture_output=True, timeout=60)
        with open(self.rsa + ".pub") as f:
            self.rsa_pub = f.read()
        self.file = os.path.join(d, "keys.json")

    def write(self, keys):
        with open(self.file + ".tmp", "w") as f:
            json.dump({"keys": keys}, f)
        os.replace(self.file + ".tmp", self.file)

    def all_keys(self, hs_kid="hs1"):
        return [{"kid": hs_kid, "alg": "HS256", "secret": HS_SECRET},
                {"kid": "rs1", "alg": "RS256", "pem": self.rsa_pub},
                {"kid": "es1", "alg": "ES256", "pem_file": "ec.pem.pub"}]

    def sign(self, alg: str, data: bytes, secret: bytes = HS_SECRET.encode()) -> bytes:
        if alg == "HS256":
            return hmac.new(secret, data, hashlib.sha256).digest()
        key = self.rsa if alg == "RS256" else self.ec
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data, check=True,
                             capture_output=True, timeout=30).stdout
        return sig if alg == "RS256" else der_to_raw(sig)

    def token(self, sub="alice", alg="HS256", kid="hs1", exp_in=600, header=None, sign_alg=None,
              secret=None, **claims) -> str:
        h = header or {"alg": alg, "typ": "JWT", "kid": kid}
        c = {"sub": sub, "exp": int(time.time()) + exp_in, **claims}
        if sub is None:
            del c["sub"]
        data = (b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(c).encode())).encode()
        if alg == "none" and sign_alg is None:
            return data.decode() + "."
        sig = self.sign(sign_alg or alg, data, *([secret] if secret is not None else []))
        return data.decode() + "." + b64url(sig)


# ---------------------------------------------------------------------------------------------- clients

def raw_upgrade(port: int, path="/ws", headers=()) -> tuple[int, str, str]:
    """An upgrade request over a plain socket: (status, head, body) of the answer."""
    req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        if status != 101:
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
    return status, head.decode(errors="replace"), body.decode(errors="replace")


def http_get(port: int, target: str, headers=()) -> tuple[int, str, str]:
    req = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode(errors="replace"), body.decode(errors="replace")


async def expect_refused(port: int, what: str, headers=(), path="/ws", status=401, reason=""):
    got, head, body = await asyncio.to_thread(raw_upgrade, port, path, headers)
    check(got == status, f"{what}: expected {status}, got {got}: {head!r} {body!r}")
    check(reason in body, f"{what}: the answer does not say {reason!r}: {body!r}")
    log(f"  {what}: {got} {body.strip()}")


async def open_client(port: int, name: str, path="/ws", **kw) -> WsClient:
    return await WsClient.open(port, path, name=name, **kw)


async def expect_error(c: WsClient, code: int, what: str, contains: str = "") -> dict:
    _, d = await c.next_event(10, what)
    check(d.get("event") == "error" and d.get("code") == code and contains in d.get("msg", ""),
          f"{c.name}: {what}: expected error {code} ({contains!r}), got {d}")
    return d


async def expect_close(c: WsClient, code: int, what: str, timeout: float = 10):
    try:
        await asyncio.wait_for(c.closed.wait(), timeout)
    except asyncio.TimeoutError:
        fail(f"{c.name}: {what}: not closed within {timeout} s")
    check(c.close_code == code, f"{c.name}: {what}: expected close {code}, got {c.describe_close()}")


async def got_data(c: WsClient, topic: str):
    _, m = await c.next_data(10)
    check(json.loads(m)["arg"]["channel"] == topic.split(":")[0], f"{c.name}: data of another topic: {m[:100]}")


async def subscribe_ok(c: WsClient, topic: str, **extra):
    await c.send_json({"op": "subscribe", "args": [topic], **extra})
    _, d = await c.next_event(10, f"ack for {topic}")
    check(d.get("event") == "subscribe" and d.get("arg") == topic, f"{c.name}: {topic}: expected an ack, got {d}")


async def subscribe_denied(c: WsClient, topic: str, code: int, contains: str = "", **extra):
    await c.send_json({"op": "subscribe", "args": [topic], **extra})
    await expect_error(c, code, f"subscribe {topic}", contains)


# ---------------------------------------------------------------------------------------------- the test

def ok(what: str):
    log(f"    ok: {what}")


async def body(args):
    tmp = tempfile.mkdtemp(prefix="fanout-auth-")
    try:
        await run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def run(args, tmp):
    keys = Keys(tmp)
    keys.write(keys.all_keys())
    page = PageServer()
    config = os.path.join(tmp, "relay.toml")
    with open(config, "w") as f:
        f.write(f"""
[auth]
key_file = "{keys.file}"
leeway_s = 0
auth_timeout_ms = 1500
expiry_warning_ms = 4000
allowed_origins = ["{GOOD_ORIGIN}", "{page.origin}"]

[[acl]]
pattern = "tickers:*"
access = "public"
[[acl]]
pattern = "user:{{sub}}"
access = "user"
[[acl]]
pattern = "vip:*"
access = "claim"
[[acl]]
pattern = "private:*"
access = "token"
[[acl]]
pattern = "secret:*"
access = "deny"
""")
    sim = FeedSim(args.sim, rate=20)
    relay = Relay(args.relay, ["--config", config, "--upstream", sim.url, "--subscribe", subscribe_msg(STREAMS), *declare_args(STREAMS),
                               "--route", ROUTE, "--listen", "127.0.0.1:0", "--stats-interval", 0,
                               "--no-status-page"])
    await relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    await sim.wait_stats(lambda st: st["subscriptions"] == len(STREAMS), "the relay subscribed")
    port = relay.port
    # Every topic has messages before the pulls below.
    snap = "/topics/{}/snapshot"
    for _ in range(200):
        if all(http_get(port, snap.format(urllib.parse.quote(f"{c}:{i}", safe="")),
                        [("Authorization", "Bearer " + keys.token(i, topics=["vip:*"]))])[0] != 404
               for c, i in STREAMS if c != "secret" and c != "private"):
            break
        await asyncio.sleep(0.05)

    log("token sources")
    c = await open_client(port, "bearer", extra_headers=[("Authorization", "Bearer " + keys.token())])
    await subscribe_ok(c, "trades:ETH-USDT")
    await got_data(c, "trades:ETH-USDT")
    c2 = await open_client(port, "subprotocol", subprotocols=["fanout.v1", "bearer." + keys.token(alg="RS256", kid="rs1")])
    check(c2.ws.subprotocol == "fanout.v1", f"the 101 echoed {c2.ws.subprotocol!r}, not fanout.v1")
    await subscribe_ok(c2, "trades:ETH-USDT")
    c3 = await open_client(port, "query", path="/ws?token=" + keys.token(alg="ES256", kid="es1"))
    await subscribe_ok(c3, "user:alice")
    await got_data(c3, "user:alice")
    c4 = await open_client(port, "auth-op", path="/ws?subscribe=trades:ETH-USDT")
    await c4.send_json({"op": "auth", "token": keys.token("carol")})
    await c4.expect_event("auth", sub="carol")
    await c4.expect_event("subscribe", arg="trades:ETH-USDT")  # the URL's subscribe, after auth
    await got_data(c4, "trades:ETH-USDT")
    for x in (c, c2, c3, c4):
        await x.ws.close()
    ok("Bearer, subprotocol (fanout.v1 echoed), ?token= and the auth op each authenticate")

    log("refused tokens")
    await expect_refused(port, "bad signature", [("Authorization", "Bearer " + keys.token(secret=b"x" * 40))],
                         reason="bad signature")
    await expect_refused(port, "expired", [("Authorization", "Bearer " + keys.token(exp_in=-30))],
                         reason="token expired")
    await expect_refused(port, "unknown kid", [("Authorization", "Bearer " + keys.token(kid="nope"))],
                         reason="unknown kid")
    await expect_refused(port, "alg none", [("Authorization", "Bearer " + keys.token(alg="none"))],
                         reason="unsupported alg")
    # HS/RS confusion: HMAC keyed with the RSA public key, claiming HS256 for the RSA kid.
    confused = keys.token(alg="HS256", kid="rs1", secret=keys.rsa_pub.encode())
    await expect_refused(port, "HS256 with the RS256 key", [("Authorization", "Bearer " + confused)],
                         reason="alg does not match the key")
    await expect_refused(port, "Basic scheme", [("Authorization", "Basic YTpi")], reason="Bearer expected")
    await expect_refused(port, "bad token in the subprotocol",
                         [("Sec-WebSocket-Protocol", "fanout.v1, bearer." + keys.token(exp_in=-30))],
                         reason="token expired")
    bad = await open_client(port, "bad-auth-op")
    await bad.send_json({"op": "auth", "token": keys.token(kid="nope")})
    await expect_error(bad, 4401, "a bad auth op", "unknown kid")
    await expect_close(bad, 4401, "a bad auth op")
    late = await open_client(port, "no-auth")
    await expect_error(late, 4401, "the auth deadline", "no auth message")
    await expect_close(late, 4401, "the auth deadline")
    rude = await open_client(port, "subscribe-first")
    await rude.send_json({"op": "subscribe", "args": ["tickers:BTC-USDT"]})
    await expect_error(rude, 4401, "another op before auth", "authenticate first")
    await expect_close(rude, 4401, "another op before auth")
    ok("bad signature, expired, unknown kid, alg none, HS/RS confusion: 401 with the reason; "
              "bad auth op, no auth, other op first: close 4401")

    log("refresh and expiry")
    # exp in 5-6 s, the warning 4 s ahead: the refresh has about 4 s to arrive.
    keep = await open_client(port, "refreshes", extra_headers=[("Authorization", "Bearer " + keys.token(exp_in=6))])
    lapse = await open_client(port, "lapses", extra_headers=[("Authorization", "Bearer " + keys.token(exp_in=6))])
    _, d = await keep.expect_event("expiring", timeout=10)
    check(0 <= d.get("in", 99) <= 4, f"expiring says in={d.get('in')}")
    await keep.send_json({"op": "refresh", "token": keys.token(exp_in=60)})
    await keep.expect_event("refresh", sub="alice")
    await expect_close(lapse, 4410, "no refresh before exp", timeout=15)
    # `keep`'s first token has expired by now as well; the connection still answers.
    await keep.send_json({"op": "ping"})
    await keep.expect_event("pong")
    check(not keep.closed.is_set(), f"the refreshed connection closed: {keep.describe_close()}")
    await keep.send_json({"op": "refresh", "token": keys.token("mallory", exp_in=60)})
    await expect_error(keep, 4403, "refresh for another sub", "another sub")
    await expect_close(keep, 4403, "refresh for another sub")
    ok("expiring event; refresh keeps the connection past exp; no refresh: 4410; another sub: 4403")

    log("access rules over WebSocket")
    alice = await open_client(port, "alice", extra_headers=[("Authorization", "Bearer " + keys.token(
        "alice", topics=["vip:gold"]))])
    await subscribe_ok(alice, "tickers:BTC-USDT")      # public
    await subscribe_ok(alice, "trades:ETH-USDT")       # no rule: the default, authenticated
    await subscribe_ok(alice, "user:alice")            # user: the owner
    await subscribe_denied(alice, "user:bob", 4403, "not allowed")
    await subscribe_ok(alice, "vip:gold")              # claim
    await subscribe_denied(alice, "vip:silver", 4403, "not allowed")
    await subscribe_denied(alice, "private:room1", 4403, "needs a subscribe token")
    await subscribe_ok(alice, "private:room1", token=keys.token(None, topic="private:room1"))
    await subscribe_denied(alice, "private:room2", 4403, "needs a subscribe token",
                           token=keys.token(None, topic="private:room1"))
    await subscribe_denied(alice, "private:room2", 4403, "not allowed",
                           token=keys.token("bob", topic="private:room2"))  # bound to bob
    await subscribe_denied(alice, "private:room2", 4401, "bad signature",
                           token=keys.token(None, topic="private:room2", secret=b"y" * 40))
    await subscribe_denied(alice, "secret:x", 4403, "not allowed")
    bob = await open_client(port, "bob", extra_headers=[("Authorization", "Bearer " + keys.token("bob"))])
    await subscribe_denied(bob, "vip:gold", 4403, "not allowed")  # no topics claim
    await subscribe_ok(bob, "user:bob")
    await subscribe_ok(bob, "private:room2", token=keys.token("bob", channel="private:room2"))
    for x in (alice, bob):
        check(not x.closed.is_set(), f"{x.name}: denied subscribes closed the connection: {x.describe_close()}")
        await x.ws.close()
    ok("WebSocket: public, authenticated, user, claim, token and deny rules allow and deny (4403/4401)")

    log("access rules over HTTP pull")
    q = lambda t: urllib.parse.quote(t, safe="")  # noqa: E731
    bearer = lambda tok: [("Authorization", "Bearer " + tok)]  # noqa: E731
    cases = [
        ("tickers:BTC-USDT", [], "", 200),
        ("trades:ETH-USDT", [], "", 401),
        ("trades:ETH-USDT", bearer(keys.token()), "", 200),
        ("user:alice", [], "", 401),
        ("user:alice", bearer(keys.token("alice")), "", 200),
        ("user:alice", [], "?token=" + keys.token("alice"), 200),
        ("user:alice", bearer(keys.token("bob")), "", 403),
        ("user:alice", bearer(keys.token("alice", exp_in=-30)), "", 401),
        ("vip:gold", bearer(keys.token("g", topics=["vip:*"])), "", 200),
        ("vip:gold", bearer(keys.token("g")), "", 403),
        ("private:room1", bearer(keys.token(None, topic="private:room1")), "", 200),
        ("private:room1", bearer(keys.token("alice")), "", 403),
        ("trades:ETH-USDT", bearer(keys.token(None, topic="private:room1")), "", 401),  # a subscribe token only
        ("secret:x", bearer(keys.token("alice")), "", 403),
    ]
    for topic, headers, query, want in cases:
        for what in ("snapshot", "history"):
            status, head, text = await asyncio.to_thread(http_get, port, f"/topics/{q(topic)}/{what}{query}", headers)
            check(status == want or (want == 200 and status == 404 and topic.startswith("private")),
                  f"GET {what} of {topic} ({'token' if headers or query else 'anonymous'}): expected {want}, "
                  f"got {status} {text.strip()[:200]}")
            if status == 200 and not topic.startswith("tickers"):
                check("Cache-Control: private" in head, f"{topic}: a non-public topic answered {head!r}")
            if status == 200 and topic.startswith("tickers"):
                check("Cache-Control: public" in head, f"{topic}: a public topic answered {head!r}")
    ok("HTTP snapshot/history: the same rules (401 without/with a bad token, 403 denied, private caching)")

    log("Origin")
    await expect_refused(port, "Origin elsewhere", [("Origin", "https://evil.example"),
                                                    ("Authorization", "Bearer " + keys.token())],
                         status=403, reason="origin not allowed")
    good = await open_client(port, "good-origin", origin=GOOD_ORIGIN,
                             extra_headers=[("Authorization", "Bearer " + keys.token())])
    none = await open_client(port, "no-origin", extra_headers=[("Authorization", "Bearer " + keys.token())])
    for x in (good, none):
        await subscribe_ok(x, "tickers:BTC-USDT")
        await x.ws.close()
    ok("Origin allow-list: 403 from elsewhere; the allowed origin and no Origin (not a browser) connect")

    log("SIGHUP reload")
    keys.write(keys.all_keys(hs_kid="hs2"))
    mark = relay.line_count()
    os.kill(relay.pid, signal.SIGHUP)
    _, line = await relay.wait_line(r"SIGHUP: keys reloaded", after=mark, what="the reload line")
    check("added [hs2]" in line and "removed [hs1]" in line, f"reload line: {line!r}")
    await expect_refused(port, "the removed kid", [("Authorization", "Bearer " + keys.token(kid="hs1"))],
                         reason="unknown kid")
    new = await open_client(port, "new-kid", extra_headers=[("Authorization", "Bearer " + keys.token(kid="hs2"))])
    await subscribe_ok(new, "tickers:BTC-USDT")
    with open(keys.file, "w") as f:
        f.write('{"keys": [{"kid": "x", "alg": "HS256", "secret": "short"}]}')
    mark = relay.line_count()
    os.kill(relay.pid, signal.SIGHUP)
    _, line = await relay.wait_line(r"SIGHUP: key file .* refused", after=mark, what="the refused line")
    log(f"  {line}")
    again = await open_client(port, "after-bad-file",
                              extra_headers=[("Authorization", "Bearer " + keys.token(kid="hs2"))])
    await subscribe_ok(again, "tickers:BTC-USDT")
    relay.require_alive("after SIGHUP")
    check(not new.closed.is_set(), f"a reload closed a connection: {new.describe_close()}")
    for x in (new, again):
        await x.ws.close()
    ok("SIGHUP: new kid accepted, removed kid refused, the log says which; a bad file keeps the keys")

    log("anonymous access")
    anon_config = os.path.join(tmp, "anonymous.toml")
    with open(anon_config, "w") as f:
        f.write(f'[auth]\nkey_file = "{keys.file}"\nallow_anonymous = true\n'
                '[[acl]]\npattern = "tickers:*"\naccess = "public"\n')
    keys.write(keys.all_keys(hs_kid="hs2"))
    open_relay = Relay(args.relay, ["--config", anon_config, "--upstream", sim.url, "--subscribe",
                                    subscribe_msg(STREAMS[:2]), "--route", ROUTE, "--listen", "127.0.0.1:0",
                                    "--topic", "tickers:BTC-USDT", "--topic", "trades:ETH-USDT",
                                    "--stats-interval", 0, "--no-status-page"], name="relay-anonymous")
    await open_relay.wait_line(Relay.live_re("upstream"), what="upstream live")
    anon = await open_client(open_relay.port, "anonymous")
    await subscribe_ok(anon, "tickers:BTC-USDT")
    await got_data(anon, "tickers:BTC-USDT")
    await subscribe_denied(anon, "trades:ETH-USDT", 4401, "needs an authenticated connection")
    await anon.send_json({"op": "auth", "token": keys.token("dave", kid="hs2")})
    await anon.expect_event("auth", sub="dave")
    await subscribe_ok(anon, "trades:ETH-USDT")
    await anon.ws.close()
    await open_relay.aterminate()
    ok("allow_anonymous: a token-less client reads public topics, gets 4401 elsewhere, and can authenticate later")

    log("headless chromium")
    if not os.access(CHROMIUM, os.X_OK):
        log(f"  SKIP: {CHROMIUM} is not installed (scripts/install-deps installs chromium)")
    else:
        result = await asyncio.to_thread(page.run_chromium, port, keys.token("alice", kid="hs2", exp_in=120))
        check(result.get("protocol") == "fanout.v1", f"chromium: {result}")
        check(result.get("ack") == "user:alice" and result.get("data"), f"chromium: {result}")
        ok(f"Chromium: new WebSocket(url, [fanout.v1, bearer.<token>]) got protocol "
                  f"{result['protocol']!r}, the ack and data")
    page.close()
    check(relay.alive(), relay.describe_death() if not relay.alive() else "")


# ---------------------------------------------------------------------------------------------- the browser

PAGE = """<!doctype html><html><body><script>
const q = new URLSearchParams(location.search);
const result = {};
function report() {
  fetch("/result", {method: "POST", body: JSON.stringify(result)});
}
const ws = new WebSocket("ws://127.0.0.1:" + q.get("port") + "/ws", ["fanout.v1", "bearer." + q.get("token")]);
ws.onopen = () => { result.protocol = ws.protocol; ws.send(JSON.stringify({op: "subscribe", args: ["user:alice"]})); };
ws.onmessage = (e) => {
  const d = JSON.parse(e.data);
  if (d.event === "subscribe") result.ack = d.arg;
  else if (d.event) result.event = e.data;
  else if (d.arg) { result.data = true; ws.close(); report(); }
};
ws.onclose = (e) => { if (!result.data) { result.close = e.code; report(); } };
setTimeout(() => { result.timeout = true; report(); }, 20000);
</script></body></html>"""


class PageServer:
    """Serves the page on 127.0.0.1 (its Origin is allowed) and takes the page's result."""

    def __init__(self):
        results = self.results = []
        done = self.done = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = PAGE.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                results.append(json.loads(self.rfile.read(n) or b"{}"))
                done.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def run_chromium(self, port: int, token: str, timeout: float = 60) -> dict:
        profile = tempfile.mkdtemp(prefix="fanout-chromium-")
        env = dict(os.environ, HOME=profile, XDG_CONFIG_HOME=profile, XDG_CACHE_HOME=profile)
        url = f"{self.origin}/?port={port}&token={token}"
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}",
                "--remote-debugging-port=0", url]
        p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                  env=env, start_new_session=True)
        try:
            if not self.done.wait(timeout):
                fail(f"chromium reported nothing within {timeout} s")
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            shutil.rmtree(profile, ignore_errors=True)
        return self.results[0]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    run_relay_test("auth", body, timeout=150)

#!/usr/bin/python3
"""wss:// with python3-websockets 10.4 against a server started with --tls-cert/--tls-key.

  /usr/bin/python3 tests/integration/test_tls.py --server build/tests/integration/fanout-test-server
                   [--openssl-records]

A throwaway CA and a server certificate for 127.0.0.1/localhost are made with the openssl command
line in a temp dir. Checks: URL and JSON subscriptions over wss (certificate verified against the
test CA), byte-exact in-order delivery; a client that does not trust the CA fails the handshake
with a certificate verification error and the server keeps serving; GET /healthz over TLS; a
plain-TCP client speaking HTTP to the TLS port is disconnected and the server keeps serving; quit
closes the wss clients with 1012 and the server exits 0. stats `tls_own_records` counts the TLS 1.3
connections fanout's own record layer took over (every one by default; none with --openssl-records,
which starts the server with --tls-openssl-records: OpenSSL throughout, ctest tls_openssl_records).
"""

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import (HOST, Checks, HttpResponse, Server, WsClient,  # noqa: E402
                            base_parser, check, collect_topic_data, fail, kill_child, log,
                            recv_until_closed, run_test, send_all_tolerant, short, spawn, tcp_connect)

MSG_BYTES = 300


# ----------------------------------------------------------------------------------------------
# Certificates

def openssl(argv, cwd: str, timeout: float = 60):
    """Run the openssl command line (a registered child, killed by PID on timeout)."""
    p = spawn(["openssl", *argv], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_child(p)
        fail(f"openssl {' '.join(argv)}: no exit within {timeout} s")
    kill_child(p)  # reaped already; drops it from the bookkeeping
    if p.returncode != 0:
        fail(f"openssl {' '.join(argv)} exited with {p.returncode}:\n"
             f"{out.decode('utf-8', 'replace')}")
    return out.decode("utf-8", "replace")


def make_certs(d: str) -> dict:
    """A CA and a server certificate signed by it (SAN IP:127.0.0.1, DNS:localhost), EC P-256."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=fanout integration test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash"], d)
    openssl(["req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost"], d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n")
    openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", "0x" + os.urandom(8).hex(), "-days", "2", "-extfile", "server.ext",
             "-out", "server.pem"], d)
    openssl(["verify", "-CAfile", "ca.pem", "-purpose", "sslserver", "server.pem"], d)
    paths = {k: os.path.join(d, f) for k, f in
             (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}
    log(f"certificates in {d}")
    return paths


def trusting_context(ca_file: str) -> ssl.SSLContext:
    """Client context that trusts only the test CA, with hostname and chain verification on."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    check(ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname,
          "client ssl context does not verify (test setup)")
    return ctx


# ----------------------------------------------------------------------------------------------
# Clients

async def wss_open(port: int, path: str, ctx: ssl.SSLContext, **kw):
    import websockets
    opts = dict(open_timeout=15, close_timeout=5, ping_interval=None, max_size=1 << 24,
                max_queue=1024, ssl=ctx)
    opts.update(kw)
    return await websockets.connect(f"wss://{HOST}:{port}{path}", **opts)


async def wss_client(port: int, path: str, ctx: ssl.SSLContext, name: str) -> WsClient:
    try:
        ws = await wss_open(port, path, ctx)
    except Exception as e:
        fail(f"{name}: cannot open wss://{HOST}:{port}{path}: {type(e).__name__}: {e}")
    check(ws.transport.get_extra_info("ssl_object") is not None,
          f"{name}: connection is not TLS")
    return WsClient(ws, name)


def tls_http_exchange(port: int, ctx: ssl.SSLContext, request: bytes, timeout: float = 10
                      ) -> tuple[HttpResponse, str]:
    """Raw HTTP over a verified TLS connection; reads until EOF. Returns (response, TLS version)."""
    raw = tcp_connect(port, timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=HOST)
    except Exception:
        raw.close()
        raise
    try:
        version = s.version()
        err = send_all_tolerant(s, request)
        data, ended = b"", "eof"
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                ended = "timeout"
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                ended = "timeout"
                break
            except ssl.SSLEOFError:
                ended = "eof (no close_notify)"
                break
            except ConnectionResetError:
                ended = "reset"
                break
            if not chunk:
                break
            data += chunk
        if err and not data:
            ended = f"send failed: {err}; then {ended}"
        return HttpResponse(data, ended), version
    finally:
        s.close()


async def expect_no_data(c: WsClient, wait: float = 0.3):
    await asyncio.sleep(wait)
    extra = c.pending_data()
    check(not extra, f"{c.name}: unexpected extra data messages: {[m[:100] for _, m in extra[:3]]}")


def seqs(first: int, last: int) -> list:
    return [(i, MSG_BYTES) for i in range(first, last + 1)]


# ----------------------------------------------------------------------------------------------

async def in_temp_dir(run, args):
    """Runs `run(args, tmp)` with a fresh directory for certificates, removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="fanout-tls-")
    try:
        await run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def body(args):
    await in_temp_dir(run, args)


async def run(args, tmp: str):
    certs = make_certs(tmp)
    ctx = trusting_context(certs["ca"])
    srv = Server(args.server, ["--shards", "2", "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                               *(["--tls-openssl-records"] if args.openssl_records else [])])
    port = srv.port
    log("records: " + ("OpenSSL's (--tls-openssl-records)" if args.openssl_records else "fanout's own (TLS 1.3)"))

    async def check_own_records(tls13_connections: int):
        """stats.tls_own_records: every TLS 1.3 connection so far, or none with OpenSSL's records."""
        want = 0 if args.openssl_records else tls13_connections
        st = await srv.astats()
        check(st.get("tls_own_records") == want and st.get("tls_record_errors") == 0,
              f"after {tls13_connections} TLS 1.3 connections expected tls_own_records {want} and "
              f"tls_record_errors 0, stats: {st}")
    checks = Checks()
    state = {"a": 0}  # last published seq of topic a
    clients: list[WsClient] = []

    async def publish_a(count: int) -> tuple[int, int]:
        last = await srv.apublish("a", count, MSG_BYTES)
        first = state["a"] + 1
        check(last == state["a"] + count,
              f"publish a {count} {MSG_BYTES} answered last seq {last}, expected {state['a'] + count}")
        state["a"] = last
        return first, last

    async def deliver_to(cs, count: int, timeout: float = 30):
        first, last = await publish_a(count)
        await asyncio.gather(*(collect_topic_data(c, {"a": seqs(first, last)}, timeout)
                               for c in cs))
        for c in cs:
            await expect_no_data(c)

    # -- subscriptions over wss, certificate verified against the test CA
    async def open_and_subscribe():
        c1 = await wss_client(port, "/ws?subscribe=a", ctx, "c1(wss, url a)")
        clients.append(c1)
        c2 = await wss_client(port, "/ws", ctx, "c2(wss, json a)")
        clients.append(c2)
        await c2.subscribe("a")
        await srv.arequire_subscribers(2, 15000)
        st = await srv.astats()
        check(st.get("subscriptions") == 2 and st.get("sessions") == 2,
              f"expected 2 sessions with 2 subscriptions, stats: {st}")
        await check_own_records(2)
        cert = c1.ws.transport.get_extra_info("peercert")
        log(f"c1: TLS {c1.ws.transport.get_extra_info('ssl_object').version()}, "
            f"peer subjectAltName {cert.get('subjectAltName') if cert else None}")
    await checks.arun("wss clients verify the server certificate and subscribe (URL, JSON)",
                      open_and_subscribe)
    if len(clients) < 2:
        checks.finish()
    c1, c2 = clients

    async def deliver_50():
        await deliver_to([c1, c2], 50)
    await checks.arun(f"publish a 50 {MSG_BYTES}: all 50 byte-exact and in order on both clients",
                      deliver_50)

    # -- a client that does not trust the CA
    async def untrusted_client():
        default_ctx = ssl.create_default_context()
        try:
            ws = await wss_open(port, "/ws?subscribe=a", default_ctx)
        except ssl.SSLCertVerificationError as e:
            log(f"untrusted client: {type(e).__name__}: {e}")
            check(e.verify_code != 0 and "certificate verify failed" in str(e),
                  f"untrusted client: unexpected verification error: {e!r}")
        except Exception as e:
            fail(f"untrusted client: expected ssl.SSLCertVerificationError, got "
                 f"{type(e).__name__}: {e}")
        else:
            await ws.close()
            fail("untrusted client: the TLS handshake succeeded with a default ssl context that "
                 "does not trust the test CA")
        check(srv.alive(), "server died after a failed TLS handshake: " + srv.describe_death())
        # The aborted handshake must not leave a session behind.
        deadline = time.monotonic() + 10
        while True:
            st = await srv.astats()
            if st.get("sessions") == 2:
                break
            if time.monotonic() > deadline:
                fail(f"10 s after the untrusted client's failed handshake stats.sessions is "
                     f"{st.get('sessions')}, expected 2 (c1, c2): {st}")
            await asyncio.sleep(0.1)
        check(st.get("subscriptions") == 2, f"expected 2 subscriptions, stats: {st}")
        await deliver_to([c1, c2], 10)
    await checks.arun("a client not trusting the CA fails certificate verification; "
                      "server keeps serving", untrusted_client)

    # -- GET /healthz over TLS
    def healthz():
        req = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
        try:
            resp, version = tls_http_exchange(port, ctx, req)
        except ssl.SSLError as e:
            fail(f"/healthz: TLS handshake failed: {type(e).__name__}: {e}")
        log(f"/healthz over {version}: {resp!r}")
        check(resp.status == 200, f"GET /healthz over TLS: expected 200, got {resp!r}")
        cl = resp.headers.get("content-length")
        if cl is not None:
            check(cl.isdigit() and int(cl) == len(resp.body),
                  f"GET /healthz over TLS: Content-Length {cl} but {len(resp.body)} body bytes "
                  f"before the connection ended ({resp.ended}): {resp!r}")
        check(resp.ended != "timeout",
              f"GET /healthz over TLS with Connection: close: server kept the connection open: "
              f"{resp!r}")
    checks.run("GET /healthz over TLS -> 200", healthz)

    # -- plain TCP speaking HTTP to the TLS port
    async def plain_http():
        def exchange():
            s = tcp_connect(port, timeout=10)
            try:
                err = send_all_tolerant(
                    s, f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
                data, ended = recv_until_closed(s, 10)
                return err, data, ended
            finally:
                s.close()
        err, data, ended = await asyncio.to_thread(exchange)
        log(f"plain HTTP to the TLS port: send error={err}, got {short(data)}, ended by {ended}")
        check(ended in ("eof", "reset"),
              f"plain HTTP to the TLS port: the server did not disconnect within 10 s "
              f"(ended by {ended}, received {short(data)})")
        check(not data.startswith(b"HTTP/"),
              f"plain HTTP to the TLS port: answered in plaintext: {short(data)}")
        check(srv.alive(), "server died after plain HTTP on the TLS port: " + srv.describe_death())
        deadline = time.monotonic() + 10
        while True:
            st = await srv.astats()
            if st.get("sessions") == 2:
                break
            if time.monotonic() > deadline:
                fail(f"10 s after the plaintext client was disconnected stats.sessions is "
                     f"{st.get('sessions')}, expected 2 (c1, c2): {st}")
            await asyncio.sleep(0.1)
        # A new wss client is served, and so are the existing ones.
        c3 = await wss_client(port, "/ws?subscribe=a", ctx, "c3(wss, url a, after plaintext)")
        clients.append(c3)
        await srv.arequire_subscribers(3, 15000)
        await deliver_to([c1, c2, c3], 20)
        await check_own_records(4)  # c1, c2, /healthz, c3 (not the refused handshakes)
    await checks.arun("plain-TCP HTTP to the TLS port is disconnected; server keeps serving wss",
                      plain_http)

    # -- quit: every wss client gets 1012, the server exits 0
    async def quit_closes_1001():
        open_clients = [c for c in clients if not c.closed.is_set()]
        check(len(open_clients) == len(clients),
              "clients closed before quit: "
              + ", ".join(f"{c.name}: {c.describe_close()}" for c in clients if c.closed.is_set()))
        rc = await srv.aquit(30)
        for c in clients:
            try:
                await asyncio.wait_for(c.closed.wait(), 15)
            except asyncio.TimeoutError:
                fail(f"{c.name}: still open 15 s after the server's bye")
        bad = [f"{c.name}: {c.describe_close()}" for c in clients if c.close_code != 1012]
        check(not bad, "after quit expected close code 1012 (drain) on every client: " + "; ".join(bad))
        check(rc == 0, f"server exited with {rc} after quit, expected 0; " + srv.describe_death())
    await checks.arun("quit: wss clients closed with 1012, server exits 0", quit_closes_1001)

    for c in clients:
        await c.close()
    checks.finish()


if __name__ == "__main__":
    parser = base_parser("tls")
    parser.add_argument("--openssl-records", action="store_true",
                        help="start the server with --tls-openssl-records (Tls::own_records = false)")
    run_test("tls", body, parser)

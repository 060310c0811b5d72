"""Headless Chromium as a WebSocket peer nobody here wrote (test_deflate.py, test_tls_records.py).

  page = PageServer(PAGE)                 # serves PAGE over plain HTTP; the page POSTs /ready and /result
  async with headless_chromium(f"{page.origin}/?port={port}", ["--ignore-certificate-errors"]):
      await asyncio.to_thread(page.done.wait, 40); r = page.result
  page.close()
"""

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading

from fanout_testlib import HOST, spawn

CHROMIUM = "/usr/bin/chromium"


class PageServer:
    """Serves `page` over plain HTTP and takes the page's reports (/ready, /result)."""

    def __init__(self, page: str):
        self.ready = threading.Event()
        self.done = threading.Event()
        self.result = {}
        outer = self
        body = page.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                data = json.loads(self.rfile.read(n) or b"{}")
                if self.path == "/ready":
                    outer.ready.set()
                elif not outer.done.is_set():
                    outer.result = data
                    outer.done.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.origin = f"http://{HOST}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.asynccontextmanager
async def headless_chromium(url: str, extra_args=()):
    """Chromium on `url` with a throw-away profile, killed (its whole process group) on exit."""
    import asyncio
    profile = tempfile.mkdtemp(prefix="fanout-chromium-")
    env = dict(os.environ, HOME=profile, XDG_CONFIG_HOME=profile, XDG_CACHE_HOME=profile)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--mute-audio", *extra_args, f"--user-data-dir={profile}",
            "--remote-debugging-port=0", url]
    p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
              env=env, start_new_session=True)
    try:
        yield p
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await asyncio.to_thread(p.wait)
        shutil.rmtree(profile, ignore_errors=True)

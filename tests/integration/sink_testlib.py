"""Helpers for the sink tests (test_sink_*.py), on top of fanout_testlib.

  * SinkDriver: fanout-sink-driver (sink_driver.cpp) as a child process: offer(), stats(), stop().
  * PgServer: a PostgreSQL 15 server of the test's own: initdb into a temporary directory, the
    postmaster started directly (its PID is ours to stop) with only a unix socket in that
    directory (no TCP port to collide with), as the `postgres` user when the test runs as root
    (PostgreSQL refuses to run as root). stop() shuts it down fast, by PID, and removes the files.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fanout_testlib  # noqa: E402
from fanout_testlib import Server, check, fail, kill_child, log  # noqa: E402,F401

PG_BIN = "/usr/lib/postgresql/15/bin"


class SinkDriver(Server):
    """fanout-sink-driver with key=value options; prints `ready`, then answers stats/stop."""

    def __init__(self, path: str, options: dict, name: str = "sink-driver"):
        # Server.__init__ waits for "port="; this driver has no port, so set up the same pieces here.
        import queue
        import threading
        self.name = name
        self.argv = [path, *(f"{k}={v}" for k, v in options.items())]
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="fanout-itest-", suffix=".stderr", delete=False)
        self.lines = queue.Queue()
        self.stash, self.transcript = [], []
        log(f"{name}: starting {' '.join(self.argv)}")
        self.proc = fanout_testlib.spawn(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.stderr_file, bufsize=0)
        fanout_testlib._servers.append(self)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.expect("ready", timeout=20)

    def offer(self, topic: str, payload: str, seq: int | None = None):
        cmd = {"op": "offer", "topic": topic, "payload": payload}
        if seq is not None:
            cmd["seq"] = seq
        self.send(json.dumps(cmd))

    def offer_many(self, items):
        """items: (topic, payload, seq) tuples, sent in one write."""
        data = "\n".join(json.dumps({"op": "offer", "topic": t, "payload": p, "seq": s}) for t, p, s in items)
        self.send(data)

    def sink_stats(self) -> dict:
        line = self.cmd('{"op":"stats"}', "stats ", timeout=30)
        return json.loads(line[len("stats "):])

    def stop(self, timeout: float = 60) -> dict:
        line = self.cmd('{"op":"stop"}', "stopped ", timeout=timeout)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name}: did not exit after stop")
        check(rc == 0, f"{self.name}: exit code {rc}")
        return json.loads(line[len("stopped "):])

    def wait_stats(self, pred, what: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.sink_stats()
            if pred(st):
                return st
            if time.monotonic() > deadline:
                fail(f"{self.name}: {what} not reached within {timeout} s; last stats {st}")
            time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        if not os.access(os.path.join(PG_BIN, "postgres"), os.X_OK):
            fail(f"PostgreSQL 15 is not installed in {PG_BIN} (scripts/install-deps installs it)")
        self.dir = tempfile.mkdtemp(prefix="fanout-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()  # only names the socket file; no TCP listener
        self.proc = None
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--locale=C", "--no-sync"])
        self.proc = self._spawn([os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port),
                                 "-k", self.dir, "-c", "listen_addresses=", "-c", "fsync=off"])
        self.conninfo = f"host={self.dir} port={self.port} user=postgres dbname=postgres"
        deadline = time.monotonic() + 60
        while True:
            try:
                self.connect().close()
                break
            except Exception as e:  # psycopg2.OperationalError while it starts
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    fail(f"PostgreSQL did not start ({e}); exit {self.proc.poll()}")
                time.sleep(0.1)
        log(f"postgres: pid {self.proc.pid}, socket in {self.dir}, port {self.port}")

    def _preexec(self):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: dies with the test
        if self.user:
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

    def _spawn(self, argv) -> subprocess.Popen:
        with fanout_testlib._children_lock:
            p = subprocess.Popen(argv, preexec_fn=self._preexec, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(self.dir, "server.log"), "ab"))
            fanout_testlib._children[p.pid] = p
        return p

    def _run(self, argv, timeout: float = 120):
        p = self._spawn(argv)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_child(p)
            fail(f"{argv[0]} did not finish in {timeout} s")
        kill_child(p)
        if rc != 0:
            fail(f"{' '.join(argv)} exited {rc}: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return "<no log>"

    def connect(self):
        import psycopg2
        return psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname="postgres")

    def query(self, sql: str, params=None):
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            kill_child(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

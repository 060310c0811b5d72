#!/usr/bin/python3
"""steady_memory: a server that publishes without pause keeps its memory flat.

  /usr/bin/python3 tests/integration/test_steady_memory.py --build build

fanout-test-server (one shard) publishes 200-byte messages at 200 msg/s for 10 s to 4,000 subscribers
of fanout-loadgen (2 processes, 127.0.0.x source addresses). A sweep over 4,000 sockets takes longer
than the gap between publishes, so the shard never runs out of dirty sessions: this once grew its
flush list by one entry per write, ~1 MiB/s, for as long as publishing went on. Checks: every message
reached every subscriber in order (no gaps), and the server's RSS grew by at most 3 MiB between the
3rd and the 10th second.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True)
ap.add_argument("--connections", type=int, default=4000)
ap.add_argument("--seconds", type=int, default=10)
a = ap.parse_args()

RATE, BYTES = 200, 200


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


tmp = tempfile.mkdtemp(prefix="fanout-steady-")
srv = subprocess.Popen([os.path.join(a.build, "tests/integration/fanout-test-server"), "--shards", "1",
                        "--ping-interval-ms", "0", "--idle-timeout-ms", "0"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
lg = None
try:
    port = int(srv.stdout.readline().strip().split("=")[1])
    ready, out = os.path.join(tmp, "ready"), os.path.join(tmp, "out.json")
    lg = subprocess.Popen([os.path.join(a.build, "tools/loadgen/fanout-loadgen"), "--port", str(port),
                           "--connections", str(a.connections), "--procs", "2", "--topics", "m",
                           "--duration-s", str(a.seconds + 30), "--ready-file", ready, "--json-out", out],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not os.path.exists(ready):
        assert time.time() - t0 < 60 and lg.poll() is None, "load generator did not get ready"
        time.sleep(0.05)
    srv.stdin.write(f"rate m {RATE} {BYTES} {a.seconds}\n")
    srv.stdin.flush()
    assert srv.stdout.readline().startswith("rate-started"), "server did not start publishing"
    time.sleep(3)
    rss_early = rss_kb(srv.pid)
    line = srv.stdout.readline()  # rate-done m <last_seq>, when the last message is published
    rss_late = rss_kb(srv.pid)
    assert line.startswith("rate-done"), line
    last_seq = int(line.split()[2])
    time.sleep(1.5)  # the last frames drain
    lg.terminate()
    lg.wait(timeout=30)
    with open(out) as f:
        r = json.load(f)
    print(f"published {last_seq}, received {r['messages_received']} over {r['connections_opened']} "
          f"connections, gaps {r['gaps']}, server RSS {rss_early} -> {rss_late} KiB")
    assert r["connections_opened"] == a.connections and r["connections_failed"] == 0, r
    assert r["gaps"] == 0 and r["out_of_order"] == 0 and r["parse_errors"] == 0, r
    assert r["messages_received"] == last_seq * a.connections, (r["messages_received"], last_seq)
    assert rss_late - rss_early <= 3 * 1024, f"server RSS grew {rss_late - rss_early} KiB while publishing"
    print("steady_memory: ok")
finally:
    if lg and lg.poll() is None:
        lg.kill()
        lg.wait()
    if srv.poll() is None:
        srv.stdin.write("quit\n")
        srv.stdin.flush()
        try:
            srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
    shutil.rmtree(tmp, ignore_errors=True)

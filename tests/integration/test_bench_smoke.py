#!/usr/bin/python3
"""bench_smoke: bench/run at its --quick size, so the harness cannot rot unnoticed.

Runs the probe, tls, fanout, market, slow, publish and storm scenarios (200 connections, 2-3 s steps) against both
fanout-test-server and the baseline server, then checks correctness only, never timing: every
scenario wrote its JSON and markdown, every connection opened, every published message reached every
subscriber exactly once and in order (no gaps, nothing dropped), and the send() probe measured sends.
Then the fanout scenario once more with --repeat 2: two runs of the rate, and their p99 spread.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--build", required=True)
ap.add_argument("--run", required=True, help="path of bench/run")
a = ap.parse_args()

out = tempfile.mkdtemp(prefix="fanout-bench-smoke-")
scenarios = ["probe", "tls", "fanout", "market", "slow", "publish", "storm"]
p = subprocess.run([sys.executable, a.run, "--quick", "--no-docs", "--build", a.build, "--out", out] + scenarios,
                   timeout=240, capture_output=True, text=True)
print(p.stdout[-4000:], p.stderr[-4000:])
assert p.returncode == 0, f"bench/run exited {p.returncode}"

def load(name):
    assert os.path.exists(os.path.join(out, f"{name}.md")), f"{name}.md missing"
    with open(os.path.join(out, f"{name}.json")) as f:
        r = json.load(f)
    assert "error" not in r, r.get("error")
    return r

probe = load("probe")
for run in probe["runs"]:
    assert [s["frames_per_send"] for s in run["steps"]] == [1, 8, 32, 128], run
    assert all(s["sends"] > 0 for s in run["steps"]), run

tls = load("tls")["servers"]["fanout"]
# Every wss client got in; the heap figure itself is 0 under ASan (its allocator is not malloc's).
assert tls["connections"] == 50 and tls["heap_per_conn_b"] >= 0 and tls["rss_per_conn_b"] > 0, tls

fan = load("fanout")
for kind in ("fanout", "baseline"):
    steps = fan["servers"][kind]["steps"]
    assert [s["rate"] for s in steps] == [10, 100], steps
    for s in steps:
        assert s["connections"] == 200 and s["failed"] == 0, s
        assert s["received"] == s["expected"] and s["gaps"] == 0 and s["out_of_order"] == 0, s
        assert s["parse_errors"] == 0 and s["dropped"] == 0, s
        assert s["late_opened"] == s["late_clients"], s

market = load("market")
for kind, s in market["servers"].items():
    # 200 connections x 5 topics of 20, 20 msg/s per topic for 2 s: 50 subscribers per topic.
    assert s["connections"] == 200 and s["gaps"] == 0 and s["dropped"] == 0, (kind, s)
    assert s["received"] == 20 * 20 * 2 * 50, (kind, s)

slow = load("slow")
for kind, runs in slow["servers"].items():
    for frac, s in runs.items():
        # The slow readers are a loadgen of their own: 180 fast + 20 slow, or 200 fast.
        slow_n = int(200 * float(frac))
        assert s["connections"] == 200 - slow_n and s["slow_connections"] == slow_n, (kind, frac, s)
        assert s["fast_gaps"] == 0 and s["fast_received"] == s["received"] > 0, (kind, frac, s)
        assert (s["slow_received"] > 0) == (slow_n > 0), (kind, frac, s)

publish = load("publish")
assert [s["case"] for s in publish["steps"]][0] == "no history" and all(s["ns_per_publish"] > 0 for s in publish["steps"])

storm = load("storm")
# 200 subscribers drop at once and come back with since: all caught up, nothing lost; without tokens
# and with each connection verifying a JWT (HS256, ES256) on connect and reconnect.
assert [s["auth"] for s in storm["steps"]] == ["none", "HS256", "ES256"], storm["steps"]
for s in storm["steps"]:
    assert s["storm_connections"] == 200 and s["storm_caught_up"] == 200, s
    assert s["gaps"] == 0 and s["out_of_order"] == 0 and s["failed"] == 0, s

# --repeat: each rate twice with fresh clients and a fresh topic, and the p99 spread per rate.
rep_out = os.path.join(out, "repeat")
p = subprocess.run([sys.executable, a.run, "--quick", "--no-docs", "--no-baseline", "--no-late", "--rates", "10",
                    "--repeat", "2", "--build", a.build, "--out", rep_out, "fanout"],
                   timeout=120, capture_output=True, text=True)
print(p.stdout[-2000:], p.stderr[-2000:])
assert p.returncode == 0, f"bench/run --repeat exited {p.returncode}"
with open(os.path.join(rep_out, "fanout.json")) as f:
    rep = json.load(f)["servers"]["fanout"]
assert [s["rate"] for s in rep["steps"]] == [10, 10], rep["steps"]
for s in rep["steps"]:
    assert s["received"] == s["expected"] and s["gaps"] == 0 and s["out_of_order"] == 0, s
spread = rep["p99_ms_by_rate"]["10"]
assert spread["min"] <= spread["median"] <= spread["max"], spread

shutil.rmtree(out, ignore_errors=True)
print("bench_smoke: ok")

#!/usr/bin/python3
"""The PostgreSQL sink against a real PostgreSQL 15 server the test starts (and stops, by PID).

  /usr/bin/python3 tests/integration/test_sink_postgres.py --server build/tests/integration/fanout-test-server \
      --driver build/tests/integration/fanout-sink-driver

Checks:
  * keeping up: 3000 messages over 3 topics, payloads with tabs, newlines, backslashes, quotes and
    non-ASCII UTF-8, arrive all, once each, byte for byte, with topic and seq, in offer order (id).
  * a connection killed by the server (pg_terminate_backend) between batches is a transient error:
    the sink reconnects, retries, and the next messages all arrive (retries >= 1).
  * falling behind: the table is locked (ACCESS EXCLUSIVE, from another session) while 2000
    messages are offered to a sink with a 20-record queue; after the lock is released the rows in
    the table are exactly the ones not counted as dropped: dropped + failed == offered - stored,
    every stored row is byte-exact and in offer order.
  * a payload PostgreSQL text cannot hold (a NUL byte; invalid UTF-8 likewise) is skipped and counted (failed), the rest of its batch is stored.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fanout_testlib import Checks, base_parser, check, fail, log, run_test  # noqa: E402
from sink_testlib import PgServer, SinkDriver  # noqa: E402

TRICKY = ['plain', 'tab\there', 'new\nline', 'back\\slash\\N', 'quote"s\'', 'crlf\r\n', 'ünïcødé €',
          '{"px":"64000.5","sz":"0.01"}', '\\.', '']


def payload(i: int, topic: str) -> str:
    return f'{{"i":{i},"topic":"{topic}","t":"{TRICKY[i % len(TRICKY)]}"}}' if i % 7 else TRICKY[i % len(TRICKY)] + str(i)


def rows(pg: PgServer, table: str):
    return pg.query(f'SELECT topic, seq, payload FROM "{table}" ORDER BY id')


def body(args):
    checks = Checks()
    pg = PgServer()
    try:
        run(args, checks, pg)
    finally:
        pg.stop()
    checks.finish()


def run(args, checks: Checks, pg: PgServer):
    def keeps_up():
        d = SinkDriver(args.driver, {"postgres": pg.conninfo, "table": "keeps_up", "max-batch": 100})
        sent = []
        for i in range(3000):
            topic = f"trades:I{i % 3}"
            sent.append((topic, payload(i, topic), i))
        d.offer_many(sent)
        st = d.stop()
        log(f"    stats {st}")
        check(st["offered"] == 3000 and st["written"] == 3000 and st["dropped"] == 0 and st["failed"] == 0,
              f"stats {st}")
        got = rows(pg, "keeps_up")
        check(len(got) == 3000, f"{len(got)} rows, expected 3000")
        for (topic, p, seq), (gt, gs, gp) in zip(sent, got):
            if (gt, gs, gp) != (topic, seq, p):
                fail(f"row differs: sent {(topic, seq, p)!r}, stored {(gt, gs, gp)!r}")

    def reconnects():
        d = SinkDriver(args.driver, {"postgres": pg.conninfo, "table": "reconnects",
                                     "retry-initial-ms": 10, "retry-max-ms": 200})
        d.offer_many([("t", f"before {i}", i) for i in range(100)])
        d.wait_stats(lambda s: s["written"] == 100, "the first 100 written")
        killed = pg.query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = '' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        check(killed[0][0] >= 1, f"no sink connection to terminate: {killed}")
        d.offer_many([("t", f"after {i}", 100 + i) for i in range(100)])
        st = d.stop()
        log(f"    stats {st}")
        check(st["written"] == 200 and st["retries"] >= 1 and st["failed"] == 0 and st["dropped"] == 0,
              f"expected 200 written after >= 1 retry: {st}")
        got = rows(pg, "reconnects")
        check([r[2] for r in got] == [f"before {i}" for i in range(100)] + [f"after {i}" for i in range(100)],
              f"rows differ: {len(got)} rows, first {got[:2]}, last {got[-2:]}")

    def falls_behind():
        d = SinkDriver(args.driver, {"postgres": pg.conninfo, "table": "behind", "max-queued": 20, "max-batch": 5,
                                     "retry-initial-ms": 10, "retry-max-ms": 100, "stop-timeout-ms": 60000})
        d.offer("t", "create the table", 0)
        d.wait_stats(lambda s: s["written"] == 1, "the first row written")
        locker = pg.connect()
        cur = locker.cursor()
        cur.execute('LOCK TABLE "behind" IN ACCESS EXCLUSIVE MODE')  # held until rollback
        sent = [("t", payload(i, "t"), i) for i in range(1, 2001)]
        d.offer_many(sent)
        st = d.wait_stats(lambda s: s["offered"] == 2001, "all offered")
        log(f"    while locked: {st}")
        check(st["dropped"] > 0, f"nothing dropped while the table was locked: {st}")
        locker.rollback()
        locker.close()
        st = d.stop()
        log(f"    stats {st}")
        got = rows(pg, "behind")[1:]
        stored = len(got)
        check(st["written"] == stored + 1, f"written {st['written']} but {stored + 1} rows")
        check(st["dropped"] + st["failed"] == 2000 - stored,
              f"dropped {st['dropped']} + failed {st['failed']} != missing {2000 - stored}")
        check(st["failed"] == 0, f"failed {st['failed']}")
        # Every stored row is one that was offered, byte-exact, in offer order (a subsequence).
        by_seq = {seq: (topic, p) for topic, p, seq in sent}
        last = 0
        for gt, gs, gp in got:
            check(gs in by_seq and by_seq[gs] == (gt, gp), f"stored row {(gt, gs, gp)!r} was not offered")
            check(gs > last, f"row with seq {gs} stored after seq {last}")
            last = gs
        log(f"    {stored} of 2000 stored, {st['dropped']} dropped")

    def not_utf8():
        # The driver reads JSON, which cannot carry invalid UTF-8; a NUL byte is the other thing
        # PostgreSQL text cannot hold.
        d = SinkDriver(args.driver, {"postgres": pg.conninfo, "table": "nul"})
        d.offer_many([("t", "ok 1", 1), ("t", "nul \x00 byte", 2), ("t", "ok 3", 3)])
        st = d.stop()
        check(st["written"] == 2 and st["failed"] == 1, f"stats {st}")
        check([r[2] for r in rows(pg, "nul")] == ["ok 1", "ok 3"], f"rows {rows(pg, 'nul')}")

    checks.run("every message stored byte-exact when the database keeps up", keeps_up)
    checks.run("a terminated connection is retried, nothing lost", reconnects)
    checks.run("a locked table: drop counter equals what is missing", falls_behind)
    checks.run("a payload PostgreSQL cannot store is skipped and counted", not_utf8)


if __name__ == "__main__":
    p = base_parser("sink_postgres")
    p.add_argument("--driver", required=True, help="path to fanout-sink-driver")
    p.set_defaults(timeout=170)
    run_test("sink_postgres", body, p)

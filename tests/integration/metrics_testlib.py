"""Helpers for the observability tests (test_relay_metrics.py, test_relay_status_page.py).

  * http_get(port, path): a plain GET over loopback (status, headers, body).
  * Scrape: GET /metrics parsed by the real Prometheus parser from Debian's
    python3-prometheus-client (prometheus_client.parser.text_string_to_metric_families), so
    anything it rejects fails the test; samples are looked up by name and labels.
"""

from __future__ import annotations

import asyncio
import http.client

from fanout_testlib import HOST, check, fail

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # python3-prometheus-client is in scripts/install-deps
    text_string_to_metric_families = None


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


class Scrape:
    """One parsed /metrics answer."""

    def __init__(self, text: str):
        if text_string_to_metric_families is None:
            fail("python3-prometheus-client is not installed (scripts/install-deps installs it)")
        self.text = text
        self.families = {}
        self.samples = {}  # (sample name, frozenset of label items) -> value
        try:
            for fam in text_string_to_metric_families(text):
                self.families[fam.name] = fam
                for s in fam.samples:
                    self.samples[(s.name, frozenset(s.labels.items()))] = s.value
        except Exception as e:  # the parser raises ValueError and friends on bad input
            fail(f"/metrics does not parse with prometheus_client: {type(e).__name__}: {e}\n{text[:3000]}")

    def get(self, name: str, **labels) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def value(self, name: str, **labels) -> float:
        v = self.get(name, **labels)
        if v is None:
            fail(f"/metrics has no sample {name}{labels or ''}; it has: "
                 + ", ".join(sorted({n for n, _ in self.samples})))
        return v

    def series(self, name: str) -> dict[frozenset, float]:
        """Every sample of `name`, by label set."""
        return {labels: v for (n, labels), v in self.samples.items() if n == name}

    def type_of(self, family: str) -> str:
        check(family in self.families, f"/metrics has no family {family}")
        return self.families[family].type


def scrape(port: int, path: str = "/metrics") -> Scrape:
    status, headers, body = http_get(port, path)
    check(status == 200, f"GET {path}: status {status}, body {body[:300]!r}")
    ctype = headers.get("content-type", "")
    check(ctype.startswith("text/plain; version=0.0.4"), f"GET {path}: Content-Type {ctype!r}")
    return Scrape(body.decode("utf-8"))


async def ascrape(port: int, path: str = "/metrics") -> Scrape:
    return await asyncio.to_thread(scrape, port, path)

"""Prometheus metrics of one server (a registry per app, so tests can run several).

The per-request counts and histograms are plain numbers kept on the event loop, the only
thread that answers requests, and turned into Prometheus families when scraped: no lock
per update (prometheus_client's Counter and Histogram take one per increment, which cost the
loop several times as much per /score request; bench/README.md).
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Scoring latencies from sub-millisecond models to the 60 s default timeout.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BUCKET_LABELS = (*map(floatToGoString, _BUCKETS), "+Inf")


class LoopHistogram:
    """Counts per bucket and a sum, updated by one thread."""

    __slots__ = ("counts", "sum")

    def __init__(self):
        self.counts = [0] * len(_BUCKET_LABELS)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(_BUCKETS, seconds)] += 1  # the first bucket with le >= seconds
        self.sum += seconds

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative, total = [], 0
        for label, count in zip(_BUCKET_LABELS, self.counts):
            total += count
            cumulative.append((label, total))
        family = HistogramMetricFamily(name, documentation)
        family.add_metric([], cumulative, self.sum)
        return family


class Metrics:
    def __init__(self, admission_state, ready_state):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests: dict[tuple[str, int], int] = {}  # (route, status code) -> answered
        self.rejections: dict[str, int] = {}  # reason -> refused before run()
        self.latency = LoopHistogram()  # /score, request to response
        self.run_latency = LoopHistogram()  # run() alone
        r.register(self)
        self.init_seconds = Gauge("bereit_init_duration_seconds", "Time init() took", registry=r)
        # Read when scraped, so the request path pays nothing for them.
        Gauge("bereit_in_flight", "run() calls in progress", registry=r).set_function(lambda: admission_state().running)
        Gauge("bereit_queued", "Requests admitted and waiting for a run slot", registry=r).set_function(
            lambda: admission_state().queued
        )
        Gauge("bereit_ready", "1 when init() has finished and the server takes requests", registry=r).set_function(
            lambda: 1.0 if ready_state() else 0.0
        )
        ProcessCollector(registry=r)

    def count(self, route: str, code: int) -> None:
        key = (route, code)
        self.requests[key] = self.requests.get(key, 0) + 1

    def rejected(self, reason: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    def collect(self):
        """What the registry asks of a collector when scraped (on the loop, like the updates)."""
        requests = CounterMetricFamily("bereit_requests", "HTTP requests answered, by route and status code", labels=["route", "code"])
        for (route, code), n in sorted(self.requests.items()):
            requests.add_metric([route, str(code)], n)
        rejected = CounterMetricFamily("bereit_rejected", "Requests refused before run(), by reason", labels=["reason"])
        for reason, n in sorted(self.rejections.items()):
            rejected.add_metric([reason], n)
        yield requests
        yield rejected
        yield self.latency.family("bereit_score_duration_seconds", "Time from request to response on /score")
        yield self.run_latency.family("bereit_run_duration_seconds", "Time spent in the entry script's run()")

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics of one server (a registry per app, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Scoring latencies from sub-millisecond models to the 60 s default timeout.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, admission_state, ready_state):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "bereit_requests", "HTTP requests answered, by route and status code", ["route", "code"], registry=r
        )
        self.latency = Histogram(
            "bereit_score_duration_seconds", "Time from request to response on /score", buckets=_BUCKETS, registry=r
        )
        self.run_latency = Histogram(
            "bereit_run_duration_seconds", "Time spent in the entry script's run()", buckets=_BUCKETS, registry=r
        )
        self.rejected = Counter(
            "bereit_rejected", "Requests refused before run(), by reason", ["reason"], registry=r
        )
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
        self._children: dict[tuple[str, int], object] = {}

    def count(self, route: str, code: int) -> None:
        child = self._children.get((route, code))
        if child is None:
            child = self._children[(route, code)] = self.requests.labels(route, str(code))
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

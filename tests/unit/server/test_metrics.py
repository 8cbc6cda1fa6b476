"""The request metrics kept on the event loop, as Prometheus reads them."""

from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from bereit.server.metrics import Metrics


def scrape(metrics: Metrics) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def new_metrics() -> Metrics:
    return Metrics(lambda: SimpleNamespace(running=1, queued=2), lambda: True)


def test_histogram_buckets_are_cumulative_and_inclusive():
    metrics = new_metrics()
    for seconds in (0.0005, 0.0007, 0.003, 500.0):  # on a bound, between bounds, past the last
        metrics.latency.observe(seconds)
    samples = scrape(metrics)
    bucket = lambda le: samples["bereit_score_duration_seconds_bucket", (("le", le),)]  # noqa: E731
    assert bucket("0.0005") == 1
    assert bucket("0.001") == 2
    assert bucket("0.0025") == 2
    assert bucket("0.005") == 3
    assert bucket("120.0") == 3
    assert bucket("+Inf") == 4
    assert samples["bereit_score_duration_seconds_count", ()] == 4
    assert abs(samples["bereit_score_duration_seconds_sum", ()] - 500.0042) < 1e-9
    assert samples["bereit_run_duration_seconds_count", ()] == 0


def test_counters_by_label_and_the_gauges_read_when_scraped():
    metrics = new_metrics()
    for code in (200, 200, 400):
        metrics.count("/score", code)
    metrics.count("other", 404)
    metrics.rejected("Overloaded")
    metrics.rejected("Overloaded")
    samples = scrape(metrics)
    assert samples["bereit_requests_total", (("code", "200"), ("route", "/score"))] == 2
    assert samples["bereit_requests_total", (("code", "400"), ("route", "/score"))] == 1
    assert samples["bereit_requests_total", (("code", "404"), ("route", "other"))] == 1
    assert samples["bereit_rejected_total", (("reason", "Overloaded"),)] == 2
    assert samples["bereit_in_flight", ()] == 1
    assert samples["bereit_queued", ()] == 2
    assert samples["bereit_ready", ()] == 1

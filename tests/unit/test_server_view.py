"""The server's own view of a run from its Prometheus /metrics: parsed with prometheus-client from text a real
vLLM-CPU server wrote (tests/data, SmolLM2, 6 requests), quantiles as histogram_quantile estimates them, and the
run's share of each histogram and counter taken as a difference."""

import math

import pytest

from helpers import REPO
from tuibench.core.events import TelemetrySample
from tuibench.core.server_view import SERVER, SERVER_HISTOGRAMS, histogram_quantile, server_view
from tuibench.telemetry.server_metrics import parse

DATA = REPO / "tests" / "data"


def test_vllms_metrics_are_read_by_our_names_with_units():
    during, _ = parse((DATA / "vllm_metrics_mid.prom").read_text())
    assert during["running_requests"] == 6 and during["waiting_requests"] == 0
    assert during["kv_cache_used_pct"] == pytest.approx(1.6529, abs=1e-3)  # vLLM's fraction, as a percentage
    assert during["prefix_cache_queries_tokens"] == 60 and during["prefix_cache_hits_tokens"] == 0
    _, buckets = parse((DATA / "vllm_metrics1.prom").read_text())
    assert buckets["ttft_le_0.1"] == 0 and buckets["ttft_le_0.25"] == 6 and buckets["ttft_le_inf"] == 6
    assert {key.split("_le_")[0] for key in buckets} == {"ttft", "tpot", "itl", "e2el"}


def test_text_that_is_not_prometheus_is_an_error_and_other_metrics_are_nothing():
    with pytest.raises(ValueError):
        parse("<html>not found</html>")
    assert parse("# TYPE other_gauge gauge\nother_gauge 3\n") == ({}, {})


@pytest.mark.parametrize("q, expected", [
    (0.5, (0.175, 0.1, 0.25)),  # rank 5 of 10: halfway into the (0.1, 0.25] bucket, which holds 2..8
    (0.1, (0.075, 0.05, 0.1)),  # rank 1 of 10: halfway into (0.05, 0.1], which holds the first 2
    (0.99, (1.0, 1.0, math.inf)),  # in +Inf: the last finite bound
])
def test_quantiles_are_linear_within_their_bucket(q, expected):
    buckets = [(0.05, 0.0), (0.1, 2.0), (0.25, 8.0), (1.0, 9.0), (math.inf, 10.0)]
    assert histogram_quantile(q, buckets) == pytest.approx(expected)
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


def test_the_runs_view_is_the_difference_over_the_run():
    before = {"ttft_le_0.1": 1.0, "ttft_le_1.0": 1.0, "ttft_le_inf": 1.0, "e2el_le_1.0": 1.0, "e2el_le_inf": 1.0}
    after = {"ttft_le_0.1": 1.0, "ttft_le_1.0": 5.0, "ttft_le_inf": 5.0, "e2el_le_1.0": 5.0, "e2el_le_inf": 5.0}
    gauges = [{"running_requests": r, "waiting_requests": w, "kv_cache_used_pct": kv, "preemptions": p,
               "prefix_cache_queries_tokens": q, "prefix_cache_hits_tokens": h}
              for r, w, kv, p, q, h in [(0, 0, 0, 3, 100, 10), (2, 5, 40, 3, 300, 60), (1, 0, 20, 4, 500, 110)]]
    samples = [TelemetrySample(t_s=0.0, source=SERVER_HISTOGRAMS, values=before),
               *(TelemetrySample(t_s=1.0 + i, source=SERVER, values=g) for i, g in enumerate(gauges)),
               TelemetrySample(t_s=9.0, source=SERVER_HISTOGRAMS, values=after)]
    view = server_view(samples)
    assert view.requests == 4  # the 1 before the run is not the run's
    assert view.ttft_p50_ms == pytest.approx(550.0) and view.buckets_ms["ttft_p50"] == (100.0, 1000.0)
    assert view.max_running_requests == 2 and view.max_waiting_requests == 5 and view.max_kv_cache_used_pct == 40
    assert view.prefix_cache_hit_pct == pytest.approx(100 * 100 / 400) and view.preemptions == 1
    assert server_view([TelemetrySample(t_s=0.0, source="cpu", values={})]) is None  # no /metrics: N/A

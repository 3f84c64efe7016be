"""Each library's Prometheus names mapped onto tuibench's: SGLang's and TensorRT-LLM's as their collectors write
them (tests/data/*.prom, in their formats), and the mock server's export in every library's names read back."""

from pathlib import Path

import pytest

from tuibench.core.server_view import bucket_key
from tuibench.servers.mock_metrics import MockMetrics
from tuibench.telemetry.server_metrics import LIBRARIES, parse

DATA = Path(__file__).resolve().parents[1] / "data"


def test_sglang_names_sum_over_ranks_and_average_the_kv_cache_use():
    series, buckets = parse((DATA / "sglang_metrics.prom").read_text())
    assert series == {"running_requests": 21.0, "waiting_requests": 4.0, "kv_cache_used_pct": 37.5,
                      "prefix_cache_queries_tokens": 5000.0, "prefix_cache_hits_tokens": 2000.0, "preemptions": 2.0}
    ttft = [buckets[bucket_key("ttft", le)] for le in (0.1, 0.5, float("inf"))]
    assert ttft == [4.0, 9.0, 10.0]
    assert buckets[bucket_key("tpot", 0.02)] == 10.0 and buckets[bucket_key("e2el", 1.0)] == 7.0


def test_trtllm_names_with_their_prefix_and_without_it_as_in_1_1():
    series, buckets = parse((DATA / "trtllm_metrics.prom").read_text())
    assert series == {"running_requests": 5.0, "waiting_requests": 3.0, "kv_cache_used_pct": 60.0,
                      "prefix_cache_queries_tokens": 1280.0, "prefix_cache_hits_tokens": 512.0,
                      "spec_draft_tokens": 20.0, "spec_accepted_tokens": 15.0}
    inf = float("inf")
    assert buckets == {bucket_key("ttft", 0.05): 2.0, bucket_key("ttft", 0.25): 5.0, bucket_key("ttft", inf): 6.0,
                       bucket_key("tpot", 0.01): 6.0, bucket_key("tpot", inf): 6.0,
                       bucket_key("e2el", 0.5): 1.0, bucket_key("e2el", inf): 6.0}
    series, buckets = parse((DATA / "trtllm_1_1_metrics.prom").read_text())  # histograms alone: nothing to sample
    assert series == {} and buckets == {bucket_key("ttft", 0.05): 2.0, bucket_key("ttft", inf): 6.0,
                                        bucket_key("e2el", 0.5): 1.0, bucket_key("e2el", inf): 6.0}


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_the_mock_servers_export_in_each_librarys_names_reads_back(library):
    metrics = MockMetrics(library, max_concurrency=4, running=lambda: 1, waiting=lambda: 3)
    metrics.prompt(12)
    metrics.observe("ttft", 0.04)
    series, buckets = parse(metrics.text().decode())
    names = LIBRARIES[library]
    expected = {"running_requests": 1.0, "waiting_requests": 3.0, "kv_cache_used_pct": 25.0}  # 1 slot of 4
    assert series == {name: value for name, value in expected.items() if name in names.gauges} | (
        {"prefix_cache_queries_tokens": 12.0} if "prefix_cache_queries_tokens" in names.counters else {}) | {
        name: 0.0 for name in names.counters if name != "prefix_cache_queries_tokens"}
    assert buckets[bucket_key("ttft", 0.05)] == 1.0 and buckets[bucket_key("ttft", 0.025)] == 0.0

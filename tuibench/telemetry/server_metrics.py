"""A server's Prometheus metrics, read during a serving run: parsed with prometheus-client's own text parser.

Each library that exports them names them its own way (vLLM's `vllm:`, SGLang's `sglang:`, TensorRT-LLM's
`trtllm_` at its own route); each is mapped here, once, onto tuibench's names. A server that answers without any of
them, or does not answer, has no server samples: not applicable, never an error. Label sets (a data parallel server
has one per engine) are summed, KV-cache use is averaged over them.
"""

import math
import urllib.request
from typing import NamedTuple

from tuibench.core.server_view import SERVER, bucket_key

_TIMEOUT_S = 2.0


class MetricNames(NamedTuple):
    """One library's names for what tuibench keeps: our name (unit in it) <- the family as the parser names it (a
    counter's _total stripped), a gauge with the scale to our unit."""

    gauges: dict[str, tuple[str, float]]
    counters: dict[str, str]
    histograms: dict[str, str]  # ttft, tpot, itl, e2el (core/server_view.HISTOGRAMS), in seconds
    path: str = "/metrics"  # where its server answers


LIBRARIES = {
    "vllm": MetricNames(
        gauges={"running_requests": ("vllm:num_requests_running", 1.0),
                "waiting_requests": ("vllm:num_requests_waiting", 1.0),
                "kv_cache_used_pct": ("vllm:kv_cache_usage_perc", 100.0)},  # a fraction despite its name
        counters={"prefix_cache_queries_tokens": "vllm:prefix_cache_queries",
                  "prefix_cache_hits_tokens": "vllm:prefix_cache_hits",
                  "preemptions": "vllm:num_preemptions",
                  "spec_draft_tokens": "vllm:spec_decode_num_draft_tokens",
                  "spec_accepted_tokens": "vllm:spec_decode_num_accepted_tokens"},
        histograms={"ttft": "vllm:time_to_first_token_seconds",
                    "tpot": "vllm:request_time_per_output_token_seconds",
                    "itl": "vllm:inter_token_latency_seconds",
                    "e2el": "vllm:e2e_request_latency_seconds"}),
    # `python -m sglang.launch_server --enable-metrics` (python/sglang/srt/metrics/collector.py).
    "sglang": MetricNames(
        gauges={"running_requests": ("sglang:num_running_reqs", 1.0),
                "waiting_requests": ("sglang:num_queue_reqs", 1.0),
                "kv_cache_used_pct": ("sglang:token_usage", 100.0)},  # KV-cache tokens in use, a fraction
        counters={"prefix_cache_queries_tokens": "sglang:prompt_tokens",  # every prompt token is looked up
                  "prefix_cache_hits_tokens": "sglang:cached_tokens",  # its radix cache's hits, by source
                  "preemptions": "sglang:num_retracted_requests"},  # SGLang's word for a preemption
        histograms={"ttft": "sglang:time_to_first_token_seconds",
                    "tpot": "sglang:time_per_output_token_seconds",
                    "itl": "sglang:inter_token_latency_seconds",
                    "e2el": "sglang:e2e_request_latency_seconds"}),
    # trtllm-serve's MetricsCollector (tensorrt_llm/metrics/collector.py), with return_perf_metrics on.
    "trtllm": MetricNames(
        gauges={"running_requests": ("trtllm_num_requests_running", 1.0),
                "waiting_requests": ("trtllm_num_requests_waiting", 1.0),
                "kv_cache_used_pct": ("trtllm_kv_cache_utilization", 100.0)},  # a fraction
        counters={"prefix_cache_queries_tokens": "trtllm_prompt_tokens",
                  "prefix_cache_hits_tokens": "trtllm_prompt_cached_tokens",  # prompt tokens served from its cache
                  "spec_draft_tokens": "trtllm_spec_decode_num_draft_tokens",
                  "spec_accepted_tokens": "trtllm_spec_decode_num_accepted_tokens"},
        histograms={"ttft": "trtllm_time_to_first_token_seconds",
                    "tpot": "trtllm_time_per_output_token_seconds",
                    "e2el": "trtllm_e2e_request_latency_seconds"},
        path="/prometheus/metrics"),
}
# Read, never written: TensorRT-LLM before its names took the `trtllm_` prefix (1.1) had request histograms alone.
_EARLIER = [MetricNames(gauges={}, counters={}, histograms={"ttft": "time_to_first_token_seconds",
                                                            "tpot": "time_per_output_token_seconds",
                                                            "e2el": "e2e_request_latency_seconds"})]


def metrics_url(endpoint: str) -> str:
    return endpoint.rstrip("/") + "/metrics"


def fetch(url: str, timeout_s: float = _TIMEOUT_S) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read().decode("utf-8", "replace")


def parse(text: str) -> tuple[dict[str, float], dict[str, float]]:
    """(series, buckets) of one scrape: the gauges and counters by our names, and every histogram's cumulative
    buckets keyed as `server_hist` samples keep them. ValueError for text that is not Prometheus's format."""
    from prometheus_client.parser import text_string_to_metric_families

    families = {family.name: family for family in text_string_to_metric_families(text)}
    series: dict[str, float] = {}
    buckets: dict[str, float] = {}
    for names in [*LIBRARIES.values(), *_EARLIER]:  # a server exports one library's names: the others find nothing
        for name, (family_name, scale) in names.gauges.items():
            if (family := families.get(family_name)) is not None and family.samples:
                values = [s.value for s in family.samples if s.name == family_name]
                if values:
                    total = sum(values)
                    series[name] = scale * (total / len(values) if name == "kv_cache_used_pct" else total)
        for name, family_name in names.counters.items():
            if (family := families.get(family_name)) is not None:
                values = [s.value for s in family.samples if s.name == family_name + "_total"]
                if values:
                    series[name] = sum(values)
        for name, family_name in names.histograms.items():
            if (family := families.get(family_name)) is not None:
                for sample in family.samples:
                    if sample.name == family_name + "_bucket":
                        le = math.inf if sample.labels["le"] == "+Inf" else float(sample.labels["le"])
                        key = bucket_key(name, le)
                        buckets[key] = buckets.get(key, 0.0) + sample.value
    return series, buckets


class ServerMetricsSource:
    """A telemetry source (name `server`) reading the series at the sampler's rate. `sampled`: whether there are
    series to sample (a server with histograms alone is read at the start and end only)."""

    name = SERVER

    def __init__(self, url: str, sampled: bool = True):
        self.url = url
        self.sampled = sampled

    def read(self) -> dict[str, float | None]:
        return dict(parse(fetch(self.url))[0])


def server_source(url: str) -> ServerMetricsSource | None:
    """The source, if the server at `url` exports anything kept (gauges and counters sampled, or histograms read at
    the start and end); None otherwise (no metrics there, or none of a library's here)."""
    try:
        series, buckets = parse(fetch(url))
    except (OSError, ValueError):
        return None
    return ServerMetricsSource(url, sampled=bool(series)) if series or buckets else None


def histogram_snapshot(url: str) -> dict[str, float | None] | None:
    """The histograms' cumulative buckets now (None: nothing to read)."""
    try:
        _, buckets = parse(fetch(url))
    except (OSError, ValueError):
        return None
    return dict(buckets) or None

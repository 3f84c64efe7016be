"""A server's Prometheus /metrics, read during a serving run: parsed with prometheus-client's own text parser.

The names kept are vLLM's (the one library here whose server exports them); a server that answers /metrics
without them, or does not answer, has no server samples: not applicable, never an error. Label sets (a data
parallel server has one per engine) are summed, KV-cache use is averaged over them.
"""

import math
import urllib.request

from tuibench.core.server_view import SERVER, bucket_key

_TIMEOUT_S = 2.0
# Our name (unit in it) <- the family as the parser names it (a counter's _total stripped), and a scale.
GAUGES = {
    "running_requests": ("vllm:num_requests_running", 1.0),
    "waiting_requests": ("vllm:num_requests_waiting", 1.0),
    "kv_cache_used_pct": ("vllm:kv_cache_usage_perc", 100.0),  # a fraction despite its name
}
COUNTERS = {
    "prefix_cache_queries_tokens": "vllm:prefix_cache_queries",
    "prefix_cache_hits_tokens": "vllm:prefix_cache_hits",
    "preemptions": "vllm:num_preemptions",
    "spec_draft_tokens": "vllm:spec_decode_num_draft_tokens",
    "spec_accepted_tokens": "vllm:spec_decode_num_accepted_tokens",
}
HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds",
    "tpot": "vllm:request_time_per_output_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2el": "vllm:e2e_request_latency_seconds",
}


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
    for name, (family_name, scale) in GAUGES.items():
        if (family := families.get(family_name)) is not None and family.samples:
            values = [s.value for s in family.samples if s.name == family_name]
            if values:
                total = sum(values)
                series[name] = scale * (total / len(values) if name == "kv_cache_used_pct" else total)
    for name, family_name in COUNTERS.items():
        if (family := families.get(family_name)) is not None:
            values = [s.value for s in family.samples if s.name == family_name + "_total"]
            if values:
                series[name] = sum(values)
    buckets: dict[str, float] = {}
    for name, family_name in HISTOGRAMS.items():
        if (family := families.get(family_name)) is not None:
            for sample in family.samples:
                if sample.name == family_name + "_bucket":
                    key = bucket_key(name, math.inf if sample.labels["le"] == "+Inf" else float(sample.labels["le"]))
                    buckets[key] = buckets.get(key, 0.0) + sample.value
    return series, buckets


class ServerMetricsSource:
    """A telemetry source (name `server`) reading the series at the sampler's rate."""

    name = SERVER

    def __init__(self, url: str):
        self.url = url

    def read(self) -> dict[str, float | None]:
        return dict(parse(fetch(self.url))[0])


def server_source(url: str) -> ServerMetricsSource | None:
    """The source, if the server at `url` exports what is kept; None otherwise (no /metrics, none of vLLM's)."""
    try:
        series, _ = parse(fetch(url))
    except (OSError, ValueError):
        return None
    return ServerMetricsSource(url) if series else None


def histogram_snapshot(url: str) -> dict[str, float | None] | None:
    """The histograms' cumulative buckets now (None: nothing to read)."""
    try:
        _, buckets = parse(fetch(url))
    except (OSError, ValueError):
        return None
    return dict(buckets) or None

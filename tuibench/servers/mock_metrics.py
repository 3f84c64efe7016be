"""The mock server's own Prometheus metrics, in one library's names (`--metrics vllm|sglang|trtllm`), at that
library's route: requests running and waiting, KV-cache use (a request's slot is its share of the cache), prompt
tokens looked up in a prefix cache that never hits, and TTFT and E2EL histograms. Whatever tuibench reads from a
server it can read from this one, known values behind it (telemetry/server_metrics.py holds the names)."""

from collections.abc import Callable

from tuibench.telemetry.server_metrics import LIBRARIES


class MockMetrics:
    def __init__(self, library: str, max_concurrency: int | None, running: Callable[[], int],
                 waiting: Callable[[], int]):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.names = LIBRARIES[library]
        self.registry = CollectorRegistry()
        # Our name -> the mock's count, read at each scrape. KV-cache use is the share of slots in use: the whole cache
        # at the concurrency limit, none without one.
        gauges = {"running_requests": running, "waiting_requests": waiting,
                  "kv_cache_used_pct": lambda: 100.0 * running() / max_concurrency if max_concurrency else 0.0}
        for name, (family, scale) in self.names.gauges.items():
            Gauge(family, name, registry=self.registry).set_function(
                lambda read=gauges[name], scale=scale: read() / scale)
        counters = {name: Counter(family, name, registry=self.registry)
                    for name, family in self.names.counters.items()}
        self._prompt_tokens = counters.get("prefix_cache_queries_tokens")
        self._histograms = {name: Histogram(family, name, registry=self.registry,
                                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
                            for name, family in self.names.histograms.items() if name in ("ttft", "e2el")}

    def prompt(self, tokens: int) -> None:
        if self._prompt_tokens is not None:
            self._prompt_tokens.inc(tokens)

    def observe(self, histogram: str, seconds: float) -> None:
        if (found := self._histograms.get(histogram)) is not None:
            found.observe(seconds)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

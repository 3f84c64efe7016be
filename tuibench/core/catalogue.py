"""Every figure tuibench shows, named once: its label, the field it is read from, its unit, which way is better,
how many decimals a table gives it; and every status with its style. The CLI's tables, Live, Compare, the
sweep table and the exports all read their rows from here, so a figure is called the same everywhere and a new
one is added in one place.
"""

from collections.abc import Callable
from dataclasses import dataclass

from tuibench.core.metrics import RunMetrics, Stat


@dataclass(frozen=True)
class Latency:
    """A distribution of a run (a Stat in RunMetrics), in milliseconds."""

    field: str  # the RunMetrics attribute: "ttft_ms"
    label: str  # a table's row: "E2E latency"
    short: str  # a narrow column, and the stem of its percentiles' names: "E2EL" -> "E2EL p50"
    serving_only: bool = False  # shown only where the run has it


LATENCIES: tuple[Latency, ...] = (
    Latency("ttft_ms", "TTFT", "TTFT"),
    Latency("tpot_ms", "TPOT", "TPOT"),
    Latency("itl_ms", "ITL", "ITL"),
    Latency("e2el_ms", "E2E latency", "E2EL"),
    # The paper's per-token latencies, and the client's own lateness and its wait for a concurrency slot.
    Latency("latency_per_token_ms", "latency / token", "lat/tok", serving_only=True),
    Latency("latency_per_output_token_ms", "latency / out tok", "lat/out", serving_only=True),
    Latency("schedule_lag_ms", "schedule lag", "lag", serving_only=True),
    Latency("client_queue_ms", "client queue", "queue", serving_only=True),
)
# The four every run has, in the order every screen lists them.
CORE_LATENCIES = tuple(latency for latency in LATENCIES if not latency.serving_only)


def _quantile(field: str, quantile: str) -> Callable[[RunMetrics], float | None]:
    def read(metrics: RunMetrics) -> float | None:
        stat: Stat | None = getattr(metrics, field)
        return getattr(stat, quantile) if stat else None

    return read


@dataclass(frozen=True)
class Metric:
    """One figure of a run: a row of a comparison, a column of the sweep table, a key of an export."""

    key: str  # the name in exports
    label: str  # what a table says
    unit: str
    higher_is_better: bool
    read: Callable[[RunMetrics], float | None]
    compared: bool = True  # a row of every comparison (else only where named, as in the sweep table)

    @property
    def digits(self) -> int:
        """Decimals a table shows: whole counts, req/s to the hundredth, the rest to the tenth."""
        return 0 if self.unit == "" else 2 if self.unit == "req/s" else 1


METRICS: tuple[Metric, ...] = (
    Metric("output_throughput_tok_s", "output tok/s", "tok/s", True, lambda m: m.output_throughput_tok_s),
    Metric("total_throughput_tok_s", "total tok/s", "tok/s", True, lambda m: m.total_throughput_tok_s),
    Metric("output_throughput_per_gpu_tok_s", "output tok/s per GPU", "tok/s", True,
           lambda m: m.output_throughput_per_gpu_tok_s),
    Metric("request_throughput_rps", "requests/s", "req/s", True, lambda m: m.request_throughput_rps),
    *(Metric(f"{latency.short.lower()}_{q}_ms", f"{latency.short} {q}", "ms", False, _quantile(latency.field, q))
      for latency in CORE_LATENCIES for q in ("p50", "p99")),
    Metric("failed", "failed requests", "", False, lambda m: m.failed),
    # A managed server launched for the step: launch to first token (what a demo waits for first).
    Metric("cold_start_s", "cold start s", "s", False, lambda m: m.cold_start.total_s if m.cold_start else None),
    # Conversations: the last turn carries the longest context; a prefix cache keeps its TTFT near the first's.
    Metric("ttft_last_turn_p50_ms", "TTFT p50, last turn", "ms", False,
           lambda m: m.turns[-1].ttft_ms.p50 if m.turns else None),
    # The server's own counters, where it exports them: prompt tokens its prefix cache held.
    Metric("prefix_cache_hit_pct", "prefix-cache hits %", "%", True,
           lambda m: m.server.prefix_cache_hit_pct if m.server else None),
    # Serving: how late the client sent at p99 (a client that could not keep up shows here, not in the server's
    # figures); and the rates requests were sent at and came back at (slower back: they queue).
    Metric("schedule_lag_p99_ms", "lag p99", "ms", False, _quantile("schedule_lag_ms", "p99"), compared=False),
    Metric("offered_rps", "sent req/s", "req/s", True, lambda m: m.offered_rps, compared=False),
    Metric("completion_rps", "back req/s", "req/s", True, lambda m: m.completion_rps, compared=False),
)
BY_KEY = {metric.key: metric for metric in METRICS}
COMPARED = tuple(metric for metric in METRICS if metric.compared)
# The paper's throughput-latency figure as a table: one row per offered rate.
SWEEP_KEYS = ("request_throughput_rps", "output_throughput_tok_s", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms",
              "tpot_p99_ms", "e2el_p50_ms", "schedule_lag_p99_ms")

# Runs, plan steps and plans: partial is a run that ended with some requests failed.
STATUS_STYLE = {"finished": "green", "partial": "yellow", "failed": "red", "interrupted": "yellow", "running": "cyan",
                "pending": "dim", "skipped": "dim", "not run": "dim"}

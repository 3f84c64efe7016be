"""Every figure tuibench shows, named once: its label, the field it is read from, its unit, which way is better,
how many decimals it is shown with; the request rate a plan offers; and every status with its style. The CLI's
tables, the comparison, the figures, Live, Compare, History and the exports all read their names from here (a
test fails on a metric's name typed anywhere else in report/ or ui/), so a figure is called the same everywhere
and a new one is added in one place.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from tuibench.core.metrics import RunMetrics, Stat
from tuibench.core.units import fmt

LATENCY_UNIT = "ms"
# Decimals of a latency in ms: a run's own distribution table shows two (an ITL can be a fraction of a ms), the
# narrower views one (a comparison's rows, the sweep, Live's percentiles).
LATENCY_DIGITS = 2
QUANTILE_DIGITS = 1


def _names_unit(label: str, unit: str) -> bool:
    """The label already ends in its unit ("output tok/s", "cold start s") or names the rate ("requests/s" in
    req/s), or there is none (a count)."""
    return not unit or label.endswith(unit) or (unit.endswith("/s") and label.endswith("/s"))


@dataclass(frozen=True)
class Latency:
    """A distribution of a run (a Stat in RunMetrics), in milliseconds."""

    field: str  # the RunMetrics attribute: "ttft_ms"
    label: str  # a table's row: "E2E latency"
    short: str  # a narrow column, and the stem of its percentiles' names: "E2EL" -> "E2EL p50"
    serving_only: bool = False  # shown only where the run has it
    unit: str = LATENCY_UNIT
    defined: str = ""  # what it measures, and the peer that measures it so, where its name means several things

    @property
    def heading(self) -> str:
        """A column of one figure of it in ms: "TPOT ms"."""
        return f"{self.short} {self.unit}"


LATENCIES: tuple[Latency, ...] = (
    Latency("ttft_ms", "TTFT", "TTFT", defined="from the request's send to its first token"),
    Latency("tpot_ms", "TPOT", "TPOT", defined="(E2EL - TTFT) / (output tokens - 1), per request: vLLM's TPOT, and "
            "what AIPerf and GuideLLM call ITL"),
    Latency("itl_ms", "ITL", "ITL", defined="the gap before each streamed chunk, pooled over requests: vLLM's"),
    Latency("e2el_ms", "E2E latency", "E2EL", defined="from the request's send to its last token"),
    # Where chunks carry several tokens (a stream interval, speculative decoding), ITL by the peers that count it
    # per token (core/itl.py).
    Latency("itl_per_token_ms", "ITL / token", "ITL/tok", serving_only=True,
            defined="one value a token after the first: its chunk's gap for the chunk's first token, 0 for the "
                    "rest: inference-perf's"),
    Latency("itl_per_accepted_token_ms", "ITL / accepted token", "ITL/acc", serving_only=True,
            defined="each chunk's gap over the tokens it carried, once for each: SGLang's"),
    # Coordinated omission: the latencies as the user waited, from each request's intended send.
    Latency("ttft_intended_ms", "TTFT (intended)", "TTFT int", serving_only=True,
            defined="from when the request was meant to be sent to its first token"),
    Latency("e2el_intended_ms", "E2E latency (intended)", "E2EL int", serving_only=True,
            defined="from when the request was meant to be sent to its last token"),
    Latency("e2el_with_failures_ms", "E2E latency (failed too)", "E2EL+fail", serving_only=True,
            defined="every request sent: a success's E2EL, a failure's time from its send to its failure (the "
                    "timeout, for one that timed out)"),
    # The paper's per-token latencies, and the client's own lateness and its wait for a concurrency slot.
    Latency("latency_per_token_ms", "latency / token", "lat/tok", serving_only=True),
    Latency("latency_per_output_token_ms", "latency / out tok", "lat/out", serving_only=True),
    Latency("schedule_lag_ms", "schedule lag", "lag", serving_only=True),
    Latency("client_queue_ms", "client queue", "queue", serving_only=True),
)
LATENCY_OF = {latency.field: latency for latency in LATENCIES}
# The four every run has, in the order every screen lists them.
CORE_LATENCIES = tuple(latency for latency in LATENCIES if not latency.serving_only)


def _quantile(field: str, quantile: str) -> Callable[[RunMetrics], float | None]:
    def read(metrics: RunMetrics) -> float | None:
        stat: Stat | None = getattr(metrics, field)
        return getattr(stat, quantile) if stat else None

    return read


UNBOUNDED = (0.0, math.inf)  # a quantile its run's sample cannot bound: no difference in it can be called


def _interval(field: str, quantile: str) -> Callable[[RunMetrics], tuple[float, float] | None]:
    def read(metrics: RunMetrics) -> tuple[float, float] | None:
        stat: Stat | None = getattr(metrics, field)
        if stat is None:
            return None
        # None in an exact sample: too few values to bound it (a p99 of 64 requests). A sketch has none to give.
        interval = getattr(stat, f"{quantile}_interval")
        return interval if interval is not None or stat.relative_error else UNBOUNDED

    return read


@dataclass(frozen=True)
class Metric:
    """One figure of a run: a row of a comparison or of a run's table, a column of the sweep table, a key of an
    export."""

    key: str  # the name in exports
    label: str  # what a table says
    unit: str  # "": a count
    # Which way is better; None: neither, a measure of the workload (the tokens it held), not of the library.
    higher_is_better: bool | None
    read: Callable[[RunMetrics], float | None]
    digits: int = 1  # decimals shown
    short: str = ""  # a narrow column, and the figure's name after a value in a line of text; "": the label
    compared: bool = True  # a row of every comparison (else only where named, as in the sweep table)
    # A quantile's 95 % interval within its own run (core/metrics.py), where its samples are independent: what a
    # comparison of single runs weighs a difference against beside the run-to-run noise (core/stats.py).
    interval: Callable[[RunMetrics], tuple[float, float] | None] | None = None

    @property
    def column(self) -> str:
        return self.short or self.label

    @property
    def heading(self) -> str:
        """The label with its unit, where the label does not say it: "TTFT p50 ms", "output tok/s"."""
        return self.label if _names_unit(self.label, self.unit) else f"{self.label} {self.unit}"

    @property
    def axis(self) -> str:
        """A figure's axis or panel: "TTFT p50 (ms)", "output tok/s"."""
        return self.label if _names_unit(self.label, self.unit) else f"{self.label} ({self.unit})"

    @property
    def speed(self) -> bool:
        """A rate or a latency: a difference in it reads faster or slower (else better or worse)."""
        return self.unit in ("tok/s", "req/s", LATENCY_UNIT)

    def text(self, value: float | None) -> str:
        """The value with its unit: "12.3 tok/s", "N/A"."""
        return fmt(value, self.digits, self.unit)

    def cell(self, value: float | None) -> str:
        """The value in a row that carries the label: with the unit where the label does not name it."""
        return fmt(value, self.digits, "" if _names_unit(self.label, self.unit) else self.unit)

    def named(self, value: float | None) -> str:
        """The value then its name, in a line of text: "12.3 out tok/s"."""
        return f"{fmt(value, self.digits)} {self.column}"


@dataclass(frozen=True)
class Quantity:
    """A figure that is not one run's metric: what a plan sets (the request rate it offers)."""

    label: str  # an axis: "offered request rate"
    unit: str
    short: str  # a column: "rate"

    @property
    def heading(self) -> str:
        """A column: "rate req/s"."""
        return f"{self.short} {self.unit}"

    @property
    def axis(self) -> str:
        """A figure's axis: "offered request rate (req/s)"."""
        return f"{self.label} ({self.unit})"


# A serving step's offered rate, as planned ("inf": all at once); a capacity search's probed rate.
REQUEST_RATE = Quantity("offered request rate", "req/s", "rate")


METRICS: tuple[Metric, ...] = (
    Metric("output_throughput_tok_s", "output tok/s", "tok/s", True, lambda m: m.output_throughput_tok_s,
           short="out tok/s"),
    Metric("total_throughput_tok_s", "total tok/s", "tok/s", True, lambda m: m.total_throughput_tok_s),
    Metric("output_throughput_per_gpu_tok_s", "output tok/s per GPU", "tok/s", True,
           lambda m: m.output_throughput_per_gpu_tok_s, short="tok/s/GPU"),
    Metric("request_throughput_rps", "requests/s", "req/s", True, lambda m: m.request_throughput_rps, digits=2,
           short="req/s"),
    # ITL pools every gap of every request: a request's gaps move together, so its samples are not independent
    # and an order-statistic interval on them would be too narrow. It has none.
    *(Metric(f"{latency.short.lower()}_{q}_ms", f"{latency.short} {q}", LATENCY_UNIT, False,
             _quantile(latency.field, q), digits=QUANTILE_DIGITS,
             interval=_interval(latency.field, q) if latency.field != "itl_ms" else None)
      for latency in CORE_LATENCIES for q in ("p50", "p99")),
    Metric("failed", "failed requests", "", False, lambda m: m.failed, digits=0, short="failed"),
    # A managed server launched for the step: launch to first token (what a demo waits for first).
    Metric("cold_start_s", "cold start s", "s", False, lambda m: m.cold_start.total_s if m.cold_start else None),
    # Conversations: the last turn carries the longest context; a prefix cache keeps its TTFT near the first's.
    Metric("ttft_last_turn_p50_ms", "TTFT p50, last turn", LATENCY_UNIT, False,
           lambda m: m.turns[-1].ttft_ms.p50 if m.turns else None),
    # The server's own counters, where it exports them: prompt tokens its prefix cache held.
    Metric("prefix_cache_hit_pct", "prefix-cache hits %", "%", True,
           lambda m: m.server.prefix_cache_hit_pct if m.server else None),
    # Serving: how late the client sent (a client that could not keep up shows here, not in the server's
    # figures); and the rates requests were sent at and came back at (slower back: they queue).
    Metric("schedule_lag_p50_ms", "lag p50", LATENCY_UNIT, False, _quantile("schedule_lag_ms", "p50"),
           compared=False),
    Metric("schedule_lag_p99_ms", "lag p99", LATENCY_UNIT, False, _quantile("schedule_lag_ms", "p99"),
           compared=False),
    Metric("offered_rps", "sent req/s", "req/s", True, lambda m: m.offered_rps, digits=2, compared=False),
    Metric("completion_rps", "back req/s", "req/s", True, lambda m: m.completion_rps, digits=2, compared=False),
    # A run's own table (and its exports): what it did, over what time, and the offline split.
    Metric("completed", "requests done", "", True, lambda m: m.completed, digits=0, compared=False),
    Metric("duration_s", "measured time", "s", False, lambda m: m.duration_s, digits=2, compared=False),
    Metric("input_tokens", "input tokens", "tokens", None, lambda m: m.input_tokens, digits=0, compared=False),
    Metric("output_tokens", "output tokens", "tokens", None, lambda m: m.output_tokens, digits=0, compared=False),
    # Requests that met every SLO, per second of the measured time; None without SLOs.
    Metric("goodput_rps", "goodput req/s", "req/s", True, lambda m: m.goodput_rps, digits=2, compared=False),
    Metric("energy_per_output_token_j", "energy / output token", "J/tok", False,
           lambda m: m.energy_per_output_token_j, digits=3, compared=False),
    # Offline static batches: the time to each batch's first token, and the rest.
    Metric("prefill_s", "prefill time", "s", False, lambda m: m.prefill_s, digits=2, compared=False),
    Metric("decode_s", "decode time", "s", False, lambda m: m.decode_s, digits=2, compared=False),
)
BY_KEY = {metric.key: metric for metric in METRICS}
COMPARED = tuple(metric for metric in METRICS if metric.compared)
# The paper's throughput-latency figure as a table: one row per offered rate.
SWEEP_KEYS = ("request_throughput_rps", "output_throughput_tok_s", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms",
              "tpot_p99_ms", "e2el_p50_ms", "schedule_lag_p99_ms")

# Runs, plan steps and plans: partial is a run that ended with some requests failed.
STATUS_STYLE = {"finished": "green", "partial": "yellow", "failed": "red", "interrupted": "yellow", "running": "cyan",
                "pending": "dim", "skipped": "dim", "not run": "dim"}

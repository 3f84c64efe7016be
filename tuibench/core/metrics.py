"""Metric definitions, one each (vLLM `bench serve` conventions). A metric with no samples is None: N/A, never 0."""

import math
from array import array
from collections.abc import Iterable, Sequence

import msgspec

from tuibench.core.events import TelemetrySample
from tuibench.core.records import RequestRecord
from tuibench.core.server_view import ServerView

PERCENTILES = (50, 90, 99)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile by linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_values) == 0:
        raise ValueError("percentile of an empty sample")
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


class Stat(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    mean: float
    std: float  # population standard deviation, as numpy.std
    min: float
    max: float
    p50: float
    p90: float
    p99: float
    # 0: exact percentiles. Else the sketch's bound on them (core/aggregate.py: a run past EXACT_VALUES samples).
    relative_error: float = 0.0
    # The 95 % distribution-free intervals of p50 and p99: the order statistics whose ranks bound the quantile's
    # (binomial, normal approximation), held within the sample. What a comparison of single runs weighs their
    # difference against (core/stats.py). None for a sketch, or a quantile past the sample (a p99 of < 100 values).
    p50_interval: tuple[float, float] | None = None
    p99_interval: tuple[float, float] | None = None


def describe(values: Iterable[float]) -> Stat | None:
    # numpy: Live describes up to 65,536 values per latency twice a second (core/aggregate.py's exact limit),
    # which a Python sort and sum of squares took 21 ms each to do; numpy's sort and moments take 1.4 ms.
    import numpy as np

    # A buffer (the aggregate's array of doubles), an ndarray or a list is taken whole; anything else is iterated.
    data = np.sort(np.asarray(values, dtype=np.float64) if isinstance(values, (Sequence, array, np.ndarray))
                   else np.fromiter(values, dtype=np.float64))
    if not data.size:
        return None
    p50, p90, p99 = (float(percentile(data, q)) for q in PERCENTILES)
    return Stat(n=int(data.size), mean=float(data.mean()), std=float(data.std()), min=float(data[0]),
                max=float(data[-1]), p50=p50, p90=p90, p99=p99, p50_interval=quantile_interval(data, 50),
                p99_interval=quantile_interval(data, 99))


def quantile_interval(sorted_values: Sequence[float], q: float, z: float = 1.96) -> tuple[float, float] | None:
    """The order statistics that bound the q-th percentile with 95 % confidence, whatever the distribution: the
    count of values below the true quantile is binomial(n, q/100), so its ranks lie within n·p ± z·sqrt(n·p(1-p)).
    A rank past either end is held at the sample's extreme (a p99 of 100-400 values reaches the largest; a median
    of 4 spans them all): the interval is as wide as the sample allows, and covers somewhat less than 95 %. None
    where the quantile lies past the sample itself (fewer than one value beyond it: a p99 of under 100 values, an
    extrapolation no sample bounds)."""
    n, p = len(sorted_values), q / 100.0
    if n < 2 or n * p < 1 or n * (1.0 - p) < 1:
        return None
    half = z * math.sqrt(n * p * (1.0 - p))
    low, high = math.floor(n * p - half) - 1, math.ceil(n * p + half)  # 1-based ranks -> 0-based, outward
    return float(sorted_values[max(low, 0)]), float(sorted_values[min(high, n - 1)])


class TokenDrift(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts as planned against as the library or server counted them, over the requests it counted."""

    requests: int  # requests with a count
    off: int  # of those, requests whose count is not the planned one
    planned_mean: float
    counted_mean: float

    @property
    def pct(self) -> float:
        return 100.0 * (self.counted_mean - self.planned_mean) / self.planned_mean if self.planned_mean else 0.0

    def describe(self, what: str) -> str:
        """E.g. "input tokens: planned 128, server counted 134.0 (+4.7 %) on 24 of 24 requests"."""
        return (f"{what}: planned {self.planned_mean:,.1f}, counted {self.counted_mean:,.1f} ({self.pct:+.1f} %) "
                f"on {self.off} of {self.requests} requests")


class ColdStart(msgspec.Struct, frozen=True, kw_only=True):
    """A managed server from its launch to its first token: what a user waits for before anything is measured."""

    process_start_s: float  # launch to its first output
    load_s: float  # first output to answering its health check
    first_request_s: float | None = None  # the first request's TTFT (None: no warm-up was sent)

    @property
    def total_s(self) -> float:
        return self.process_start_s + self.load_s + (self.first_request_s or 0.0)


class TurnStat(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation turn across the run's conversations: its prompt carries every turn before it."""

    turn: int  # from 0
    completed: int
    prompt_tokens: float  # mean, as the server counted them (else as planned)
    ttft_ms: Stat


class WorkerStat(msgspec.Struct, frozen=True, kw_only=True):
    """Serving with --client-workers: one client process's requests and how late it sent them."""

    worker: int
    requests: int
    failed: int
    lag_ms: Stat  # its schedule lag: one saturated worker shows here
    clock_offset_ms: float | None = None  # a Ray actor's clock against the run's


class SteadyState(msgspec.Struct, frozen=True, kw_only=True):
    """A serving run between its warm-up and its drain (core/steady.py: MSER-5 on TTFT in send order)."""

    warmup: int  # requests sent before the window
    drain: int  # requests sent after it
    requests: int  # in it
    start_s: float  # the window's first request handed over, on the run's clock
    last_start_s: float  # its last request handed over (the drain's requests were sent after it)
    end_s: float  # its last request finished
    output_throughput_tok_s: float | None  # its requests' output tokens over [start_s, end_s]
    ttft_ms: Stat
    tpot_ms: Stat | None
    e2el_ms: Stat


class RunMetrics(msgspec.Struct, frozen=True, kw_only=True):
    completed: int
    failed: int
    first_error: str | None = None  # the first failed request's error, as it came
    duration_s: float | None  # first request handed over -> last request finished
    input_tokens: int
    output_tokens: int
    request_throughput_rps: float | None
    output_throughput_tok_s: float | None
    total_throughput_tok_s: float | None
    # Output tok/s over the GPUs the run used (vLLM's parallel layout; 1 for the others): None for a CPU run.
    output_throughput_per_gpu_tok_s: float | None = None
    ttft_ms: Stat | None
    tpot_ms: Stat | None
    itl_ms: Stat | None
    e2el_ms: Stat | None
    # ITL by inference-perf's and SGLang's conventions (core/itl.py); None unless some chunk carried several
    # tokens (else they equal itl_ms), or where a request's chunks carried tokens the server did not count.
    itl_per_token_ms: Stat | None = None
    itl_per_accepted_token_ms: Stat | None = None
    # Serving: TTFT and E2EL from when each request was meant to be sent, as the user waited (coordinated
    # omission: a client behind its schedule, or holding requests for a slot, hides that wait from the others).
    ttft_intended_ms: Stat | None = None
    e2el_intended_ms: Stat | None = None
    # Serving with failed requests: E2EL over every request sent, a failure counted at its time to failure (the
    # timeout, for one that timed out). The view of successes alone flatters a server that drops slow requests.
    e2el_with_failures_ms: Stat | None = None
    # Offline static batches: time to the first token of each batch, and the rest.
    prefill_s: float | None = None
    decode_s: float | None = None
    # Serving: how late requests were sent (a saturated client shows here; not the wait for a concurrency slot,
    # which is client_queue_ms), the paper's per-token
    # latencies (E2EL / (input + output) and E2EL / output), and goodput under the SLOs, if any.
    schedule_lag_ms: Stat | None = None
    client_queue_ms: Stat | None = None  # with --max-concurrency: the wait for a free slot, before sending
    latency_per_token_ms: Stat | None = None
    latency_per_output_token_ms: Stat | None = None
    goodput_rps: float | None = None
    # Serving: the rate requests were sent at, as scheduled ((n - 1) over the span of the planned send times; None
    # when all were sent at once), and the rate they came back at (the same over the span of their end times).
    # Came back slower than sent: they queued, the server is saturated.
    offered_rps: float | None = None
    completion_rps: float | None = None
    trimmed: int = 0  # requests left out at each end (the paper's first/last N)
    # GPU energy over the measured time (every GPU's counter, summed) per output token; None without a counter.
    energy_per_output_token_j: float | None = None
    # The workload as run against the workload planned: prompt lengths as the library or server counted them, and
    # output lengths as generated (short of the target: EOS where the plan let it end early). None: not counted.
    input_drift: TokenDrift | None = None
    output_drift: TokenDrift | None = None
    # Serving against a server that exports Prometheus metrics: what it saw (its latency quantiles, queue, KV cache,
    # prefix-cache hits, preemptions). None: it exports none tuibench reads.
    server: ServerView | None = None
    # The run's managed server was launched for it (the first serving step of its library): how long it took to
    # give a first token. None for a server reused from an earlier step, or one the user runs.
    cold_start: ColdStart | None = None
    # The conversations dataset: TTFT per turn, as the context grows (flat where a prefix cache holds the turns).
    turns: list[TurnStat] | None = None
    workers: list[WorkerStat] | None = None  # --client-workers: each client process's share
    # Serving at a rate (not all at once) of at least 50 requests: the window between warm-up and drain, and its
    # figures beside the whole run's. None: too short, all sent at once, or past EXACT_VALUES requests.
    steady: SteadyState | None = None


# Requests that come back at under this share of the rate they were sent at are queueing: the server is saturated.
KEEPS_UP = 0.9


def falls_behind(offered_rps: float | None, completion_rps: float | None) -> bool:
    """Requests came back slower than they were sent: they queue. False when either rate is unknown."""
    return bool(offered_rps) and completion_rps is not None and completion_rps < KEEPS_UP * offered_rps


def request_end_s(record: RequestRecord) -> float:
    return record.start_s + (record.e2el_ms or 0.0) / 1000.0


def _counter_at(points: Sequence[tuple[float, float]], t_s: float) -> float:
    """A cumulative counter at t_s, linear between samples and held at the first/last sample outside them."""
    if t_s <= points[0][0]:
        return points[0][1]
    if t_s >= points[-1][0]:
        return points[-1][1]
    low, high = 0, len(points) - 1
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if points[mid][0] <= t_s else (low, mid)
    (t0, e0), (t1, e1) = points[low], points[high]
    return e0 + (e1 - e0) * (t_s - t0) / (t1 - t0) if t1 > t0 else e1


def gpu_energy_j(telemetry: Sequence[TelemetrySample], start_s: float, end_s: float) -> float | None:
    """Joules every GPU used in [start_s, end_s], from the energy_j counters of the "gpu*" sources.

    The window's edges are interpolated between the samples either side, so a run shorter than the
    sampling interval still gets its share; a GPU whose samples do not reach into the window is left
    out. None when no GPU has a counter there.
    """
    by_gpu: dict[str, list[tuple[float, float]]] = {}
    for sample in telemetry:
        if sample.source.startswith("gpu") and (energy := sample.values.get("energy_j")) is not None:
            by_gpu.setdefault(sample.source, []).append((sample.t_s, energy))
    total_j = None
    for points in by_gpu.values():
        points.sort()
        if points[0][0] >= end_s or points[-1][0] <= start_s:
            continue
        total_j = (total_j or 0.0) + _counter_at(points, end_s) - _counter_at(points, start_s)
    return total_j


def schedule_lag_ms(record: RequestRecord) -> float | None:
    """The client's own lateness sending one request: how late it went, less any wait for a concurrency slot
    (counted apart, as client queue). None where it had no planned time (offline)."""
    if record.scheduled_s is None:
        return None
    return (record.start_s - record.scheduled_s) * 1000.0 - (record.client_queue_ms or 0.0)

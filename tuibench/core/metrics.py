"""Metric definitions, one each (vLLM `bench serve` conventions). A metric with no samples is None: N/A, never 0."""

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import msgspec

from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.server_view import ServerView, server_view

if TYPE_CHECKING:  # events imports spec, which imports this module
    from tuibench.core.events import TelemetrySample

PERCENTILES = (50, 90, 99)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile by linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
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


def describe(values: Iterable[float]) -> Stat | None:
    data = sorted(values)
    if not data:
        return None
    n = len(data)
    mean = math.fsum(data) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in data) / n)
    p50, p90, p99 = (percentile(data, q) for q in PERCENTILES)
    return Stat(n=n, mean=mean, std=std, min=data[0], max=data[-1], p50=p50, p90=p90, p99=p99)


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return numerator / denominator if denominator else None


def _rate_over_span(times_s: Sequence[float]) -> float | None:
    """Events per second between the first and the last of `times_s`: (n - 1) / span; None under two, or no span."""
    return _ratio(len(times_s) - 1, max(times_s) - min(times_s)) if len(times_s) > 1 else None


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


def token_drift(pairs: Iterable[tuple[int, int]]) -> TokenDrift | None:
    """(planned, counted) per request; None when nothing was counted."""
    pairs = list(pairs)
    if not pairs:
        return None
    return TokenDrift(requests=len(pairs), off=sum(planned != counted for planned, counted in pairs),
                      planned_mean=math.fsum(p for p, _ in pairs) / len(pairs),
                      counted_mean=math.fsum(c for _, c in pairs) / len(pairs))


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


class RunMetrics(msgspec.Struct, frozen=True, kw_only=True):
    completed: int
    failed: int
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


class Slo(msgspec.Struct, frozen=True, kw_only=True):
    """Service-level objectives for goodput; a request counts when it meets every one that is set."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2el_ms: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.ttft_ms, self.tpot_ms, self.e2el_ms))

    def met_by(self, record: RequestRecord) -> bool:
        checks = ((self.ttft_ms, record.ttft_ms), (self.tpot_ms, record.tpot_ms), (self.e2el_ms, record.e2el_ms))
        return record.ok and all(value is not None and value <= limit for limit, value in checks if limit is not None)


def trim_records(records: Sequence[RequestRecord], trim: int) -> list[RequestRecord]:
    """Leaves out the first and last `trim` requests by send time (warm-up and drain of a serving run)."""
    if trim <= 0:
        return list(records)
    ordered = sorted(records, key=lambda r: (r.start_s, r.index))
    return ordered[trim: len(ordered) - trim]


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


def gpu_energy_j(telemetry: Sequence["TelemetrySample"], start_s: float, end_s: float) -> float | None:
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


def lag_by_worker(records: Sequence[RequestRecord]) -> dict[int, Stat]:
    """Schedule lag per client process (--client-workers), so that one saturated worker shows."""
    workers = sorted({r.worker for r in records if r.worker is not None})
    return {w: stat for w in workers
            if (stat := describe(lag for r in records if r.worker == w and (lag := schedule_lag_ms(r)) is not None))}


def compute_metrics(records: Sequence[RequestRecord], batches: Sequence[BatchRecord] = (), slo: Slo | None = None,
                    trim: int = 0, telemetry: Sequence["TelemetrySample"] = (), gpus: int = 0) -> RunMetrics:
    """The run's figures from its requests; `gpus`: how many GPUs it computed on (0: a CPU run)."""
    records = trim_records(records, trim)
    done = [r for r in records if r.ok]
    failed = len(records) - len(done)
    duration_s = None
    energy_j = None
    if done:
        start_s, end_s = min(r.start_s for r in records), max(request_end_s(r) for r in done)
        duration_s = end_s - start_s
        energy_j = gpu_energy_j(telemetry, start_s, end_s) if telemetry else None
    input_tokens = sum(r.input_tokens for r in done)
    output_tokens = sum(r.output_tokens for r in done)
    return RunMetrics(
        completed=len(done),
        failed=failed,
        duration_s=duration_s,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        request_throughput_rps=_ratio(len(done), duration_s),
        output_throughput_tok_s=_ratio(output_tokens, duration_s),
        total_throughput_tok_s=_ratio(input_tokens + output_tokens, duration_s),
        output_throughput_per_gpu_tok_s=_ratio(output_tokens, duration_s * gpus) if gpus and duration_s else None,
        ttft_ms=describe(r.ttft_ms for r in done if r.ttft_ms is not None),
        tpot_ms=describe(t for r in done if (t := r.tpot_ms) is not None),
        # ITL pools every gap of every request, as vLLM does.
        itl_ms=describe(gap for r in done for gap in r.itl_ms),
        e2el_ms=describe(r.e2el_ms for r in done if r.e2el_ms is not None),
        prefill_s=math.fsum(b.prefill_ms for b in batches) / 1000.0 if batches else None,
        decode_s=math.fsum(b.decode_ms for b in batches) / 1000.0 if batches else None,
        # The client's own lateness: how late it sent, less any wait for a concurrency slot (counted apart).
        schedule_lag_ms=describe(lag for r in records if (lag := schedule_lag_ms(r)) is not None),
        client_queue_ms=describe(r.client_queue_ms for r in records if r.client_queue_ms is not None),
        latency_per_token_ms=describe(
            r.e2el_ms / (r.input_tokens + r.output_tokens) for r in done if r.e2el_ms is not None
        ),
        latency_per_output_token_ms=describe(
            r.e2el_ms / r.output_tokens for r in done if r.e2el_ms is not None and r.output_tokens
        ),
        goodput_rps=_ratio(sum(slo.met_by(r) for r in done), duration_s) if slo and slo.any else None,
        offered_rps=_rate_over_span([r.scheduled_s for r in records if r.scheduled_s is not None]),
        completion_rps=_rate_over_span([request_end_s(r) for r in done]) if any(
            r.scheduled_s is not None for r in records) else None,
        trimmed=max(trim, 0),
        energy_per_output_token_j=_ratio(energy_j, output_tokens) if energy_j is not None else None,
        input_drift=token_drift((r.input_tokens, r.counted_input_tokens) for r in done
                                if r.counted_input_tokens is not None),
        output_drift=token_drift((r.target_output_tokens, r.output_tokens) for r in done),
        server=server_view(telemetry) if telemetry else None,
        turns=by_turn(done) if any(r.turn is not None for r in done) else None,
    )


def by_turn(done: Sequence[RequestRecord]) -> list[TurnStat]:
    turns = sorted({r.turn for r in done if r.turn is not None})
    stats = []
    for turn in turns:
        of_turn = [r for r in done if r.turn == turn]
        ttft = describe(r.ttft_ms for r in of_turn if r.ttft_ms is not None)
        if ttft is not None:
            tokens = [r.counted_input_tokens if r.counted_input_tokens is not None else r.input_tokens for r in of_turn]
            stats.append(TurnStat(turn=turn, completed=len(of_turn), prompt_tokens=sum(tokens) / len(tokens),
                                  ttft_ms=ttft))
    return stats

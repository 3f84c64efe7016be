"""A run's figures gathered request by request, in memory that does not grow with the run.

The app and the CLI hold a run's state for as long as it runs, and a serving run may send 100,000 requests over a
day. So nothing here keeps a request: each is folded into counts, sums and distributions as it ends, and the
per-request detail lives in the results store only. A distribution keeps its values (exact percentiles, as
before) up to EXACT_VALUES, then moves them into a DDSketch: percentiles within SKETCH_RELATIVE_ACCURACY of the
true value, in a few thousand buckets whatever the count. Count, mean, std, min and max stay exact. The one
per-request series, what the steady window is searched in (core/steady.py), keeps 48 bytes a request up to the
same EXACT_VALUES, and past it the run has no steady window.
"""

import copy
import heapq
import math
from array import array
from collections.abc import Iterable, Sequence

from tuibench.core.events import TelemetrySample
from tuibench.core.itl import chunk_sizes, itl_per_accepted_token_ms, itl_per_token_ms
from tuibench.core.metrics import (
    PERCENTILES, RunMetrics, Stat, SteadyState, TokenDrift, TurnStat, WorkerStat, describe, gpu_energy_j,
    request_end_s, schedule_lag_ms,
)
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.server_view import server_view
from tuibench.core.spec import Slo
from tuibench.core.steady import steady_window

# Exact percentiles up to this many values per distribution (512 KiB of doubles): every run of a few thousand
# requests, and the ITL gaps of a few hundred, are exact; beyond, a sketch.
EXACT_VALUES = 65_536
SKETCH_RELATIVE_ACCURACY = 0.005  # ±0.5 % on a percentile past EXACT_VALUES


class Distribution:
    """One metric's values: exact up to EXACT_VALUES, then a relative-accuracy sketch (count and moments exact)."""

    __slots__ = ("_values", "_sketch", "n", "_mean", "_m2", "_min", "_max")

    def __init__(self):
        self._values: array | None = array("d")
        self._sketch = None
        self.n, self._mean, self._m2 = 0, 0.0, 0.0  # Welford's running mean and sum of squared deviations
        self._min, self._max = math.inf, -math.inf

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self._mean
        self._mean += delta / self.n
        self._m2 += delta * (value - self._mean)
        self._min, self._max = min(self._min, value), max(self._max, value)
        if self._values is not None:
            self._values.append(value)
            if len(self._values) > EXACT_VALUES:
                self._spill()
        else:
            self._sketch.add(value)

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    def _spill(self) -> None:
        from ddsketch import DDSketch

        self._sketch = DDSketch(relative_accuracy=SKETCH_RELATIVE_ACCURACY)
        for value in self._values:
            self._sketch.add(value)
        self._values = None

    def stat(self) -> Stat | None:
        if self._values is not None:
            return describe(self._values)  # exact, and exactly as a list of values is described
        quantiles = [self._sketch.get_quantile_value(q / 100.0) for q in PERCENTILES]
        return Stat(n=self.n, mean=self._mean, std=math.sqrt(self._m2 / self.n), min=self._min, max=self._max,
                    p50=quantiles[0], p90=quantiles[1], p99=quantiles[2],
                    relative_error=SKETCH_RELATIVE_ACCURACY)


class _Span:
    """How many times were seen, and the earliest and latest: a rate over a span without keeping the times."""

    __slots__ = ("n", "low", "high")

    def __init__(self):
        self.n, self.low, self.high = 0, math.inf, -math.inf

    def add(self, t_s: float) -> None:
        self.n, self.low, self.high = self.n + 1, min(self.low, t_s), max(self.high, t_s)

    def rate(self) -> float | None:
        """(n - 1) / span; None under two, or no span."""
        return (self.n - 1) / (self.high - self.low) if self.n > 1 and self.high > self.low else None


class _Drift:
    __slots__ = ("n", "off", "planned", "counted")

    def __init__(self):
        self.n = self.off = 0
        self.planned = self.counted = 0

    def add(self, planned: int, counted: int) -> None:
        self.n, self.off = self.n + 1, self.off + (planned != counted)
        self.planned, self.counted = self.planned + planned, self.counted + counted

    def result(self) -> TokenDrift | None:
        if not self.n:
            return None
        return TokenDrift(requests=self.n, off=self.off, planned_mean=self.planned / self.n,
                          counted_mean=self.counted / self.n)


class _Turn:
    __slots__ = ("completed", "prompt_tokens", "ttft")

    def __init__(self):
        self.completed, self.prompt_tokens, self.ttft = 0, 0, Distribution()


class _Worker:
    __slots__ = ("requests", "failed", "lag", "clock_offset_ms")

    def __init__(self):
        self.requests, self.failed, self.lag, self.clock_offset_ms = 0, 0, Distribution(), None


class RunAggregate:
    """Everything a run's metrics need, folded in as requests end. `metrics()` any time; add in any order.

    `trim` leaves out the first and last `trim` requests by send time (the paper's warm-up and drain): the
    candidates sit in two heaps of `trim` each until a request earlier (or later) than they are pushes them out,
    into the figures. So the figures are those of the requests sent between, whatever order they end in.
    """

    def __init__(self, slo: Slo | None = None, trim: int = 0, gpus: int = 0):
        self._slo = slo if slo is not None and slo.any else None
        self._trim = max(trim, 0)
        self._gpus = gpus
        self._head: list[tuple[float, int, int, RequestRecord]] = []  # max-heap (negated) of the earliest sent
        self._tail: list[tuple[float, int, int, RequestRecord]] = []  # min-heap of the latest sent
        self._pushed = 0  # a tie-breaker, so heaps never compare records
        self.completed = self.failed = 0
        self.first_error: str | None = None
        self.input_tokens = self.output_tokens = 0
        self.first_start_s, self.last_end_s = math.inf, -math.inf
        self.ttft, self.tpot, self.itl, self.e2el = Distribution(), Distribution(), Distribution(), Distribution()
        self.schedule_lag, self.client_queue = Distribution(), Distribution()
        # ITL per token and per accepted token: made at the first request whose chunks carried several tokens
        # (until then, equal to ITL); given only where every request said what its chunks carried.
        self.itl_per_token: Distribution | None = None
        self.itl_per_accepted_token: Distribution | None = None
        self.sizes_unknown = False
        self.ttft_intended, self.e2el_intended = Distribution(), Distribution()
        self.e2el_with_failures, self.failed_sent = Distribution(), 0
        self.series = _Series()  # the completed requests one by one, for the steady window
        self.latency_per_token, self.latency_per_output_token = Distribution(), Distribution()
        self.good = 0
        self.scheduled, self.ends = _Span(), _Span()
        self.input_drift, self.output_drift = _Drift(), _Drift()
        self.turns: dict[int, _Turn] = {}
        self.workers: dict[int, _Worker] = {}
        self.prefill_ms = self.decode_ms = 0.0
        self.batches = 0

    def add(self, record: RequestRecord) -> None:
        if record.worker is not None:  # every request its worker sent, trimmed or not: the worker's own account
            self._add_worker(record)
        if not self._trim:
            self._fold(record)
            return
        self._pushed += 1
        out = _push(self._head, (-record.start_s, -record.index, -self._pushed, record), self._trim)
        if out is None:
            return
        record = out[3]  # later than every candidate for the head: not among the first `trim`
        out = _push(self._tail, (record.start_s, record.index, self._pushed, record), self._trim)
        if out is not None:
            self._fold(out[3])  # earlier than every candidate for the tail too: in the measured middle

    def add_batch(self, batch: BatchRecord) -> None:
        self.batches += 1
        self.prefill_ms += batch.prefill_ms
        self.decode_ms += batch.decode_ms

    def _add_worker(self, record: RequestRecord) -> None:
        worker = self.workers.setdefault(record.worker, _Worker())
        worker.requests += 1
        worker.failed += not record.ok
        if (lag := schedule_lag_ms(record)) is not None:
            worker.lag.add(lag)
        if worker.clock_offset_ms is None:
            worker.clock_offset_ms = record.clock_offset_ms

    def _fold(self, r: RequestRecord) -> None:
        self.first_start_s = min(self.first_start_s, r.start_s)
        if (lag := schedule_lag_ms(r)) is not None:
            self.schedule_lag.add(lag)
        if r.client_queue_ms is not None:
            self.client_queue.add(r.client_queue_ms)
        if r.scheduled_s is not None:
            self.scheduled.add(r.scheduled_s)
        if not r.ok:
            self.failed += 1
            self.first_error = self.first_error or r.error
            if r.failed_after_ms is not None:
                self.failed_sent += 1
                self.e2el_with_failures.add(r.failed_after_ms)
            return
        self.completed += 1
        end_s = request_end_s(r)
        self.last_end_s = max(self.last_end_s, end_s)
        self.ends.add(end_s)
        self.input_tokens += r.input_tokens
        self.output_tokens += r.output_tokens
        if r.ttft_ms is not None:
            self.ttft.add(r.ttft_ms)
        if (tpot := r.tpot_ms) is not None:
            self.tpot.add(tpot)
        self._fold_chunks(r)
        self.itl.extend(r.itl_ms)  # ITL pools every gap of every request, as vLLM does
        if (ttft := r.ttft_intended_ms) is not None:
            self.ttft_intended.add(ttft)
        if (e2el := r.e2el_intended_ms) is not None:
            self.e2el_intended.add(e2el)
        if r.e2el_ms is not None:
            self.e2el.add(r.e2el_ms)
            self.e2el_with_failures.add(r.e2el_ms)
            if r.ttft_ms is not None and r.scheduled_s is not None:
                self.series.add(r, end_s)
            self.latency_per_token.add(r.e2el_ms / (r.input_tokens + r.output_tokens))
            if r.output_tokens:
                self.latency_per_output_token.add(r.e2el_ms / r.output_tokens)
        if self._slo is not None and self._slo.met_by(r):
            self.good += 1
        if r.counted_input_tokens is not None:
            self.input_drift.add(r.input_tokens, r.counted_input_tokens)
        self.output_drift.add(r.target_output_tokens, r.output_tokens)
        if r.turn is not None:
            turn = self.turns.setdefault(r.turn, _Turn())
            turn.completed += 1
            turn.prompt_tokens += r.counted_input_tokens if r.counted_input_tokens is not None else r.input_tokens
            if r.ttft_ms is not None:
                turn.ttft.add(r.ttft_ms)

    def _fold_chunks(self, r: RequestRecord) -> None:
        if chunk_sizes(r) is None:
            self.sizes_unknown = True
        elif r.chunk_tokens:
            if self.itl_per_token is None:  # every request before carried one token a chunk: their gaps are ITL's
                self.itl_per_token, self.itl_per_accepted_token = copy.deepcopy(self.itl), copy.deepcopy(self.itl)
            self.itl_per_token.extend(itl_per_token_ms(r))
            self.itl_per_accepted_token.extend(itl_per_accepted_token_ms(r))
        elif self.itl_per_token is not None:
            self.itl_per_token.extend(r.itl_ms)
            self.itl_per_accepted_token.extend(r.itl_ms)

    def _per_token(self, distribution: Distribution | None) -> Stat | None:
        return distribution.stat() if distribution is not None and not self.sizes_unknown else None

    @property
    def window_s(self) -> tuple[float, float] | None:
        """From the first request handed over to the last one finished; None before any finished."""
        return (self.first_start_s, self.last_end_s) if self.completed else None

    def metrics(self, telemetry: Sequence[TelemetrySample] = ()) -> RunMetrics:
        duration_s = energy_j = None
        if (window := self.window_s) is not None:
            duration_s = window[1] - window[0]
            energy_j = gpu_energy_j(telemetry, *window) if telemetry else None

        def per_s(count: float) -> float | None:
            return count / duration_s if duration_s else None

        return RunMetrics(
            completed=self.completed,
            failed=self.failed,
            first_error=self.first_error,
            duration_s=duration_s,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            request_throughput_rps=per_s(self.completed),
            output_throughput_tok_s=per_s(self.output_tokens),
            total_throughput_tok_s=per_s(self.input_tokens + self.output_tokens),
            output_throughput_per_gpu_tok_s=per_s(self.output_tokens / self._gpus) if self._gpus else None,
            ttft_ms=self.ttft.stat(),
            tpot_ms=self.tpot.stat(),
            itl_ms=self.itl.stat(),
            e2el_ms=self.e2el.stat(),
            itl_per_token_ms=self._per_token(self.itl_per_token),
            itl_per_accepted_token_ms=self._per_token(self.itl_per_accepted_token),
            ttft_intended_ms=self.ttft_intended.stat(),
            e2el_intended_ms=self.e2el_intended.stat(),
            e2el_with_failures_ms=self.e2el_with_failures.stat() if self.failed_sent else None,
            prefill_s=self.prefill_ms / 1000.0 if self.batches else None,
            decode_s=self.decode_ms / 1000.0 if self.batches else None,
            schedule_lag_ms=self.schedule_lag.stat(),
            client_queue_ms=self.client_queue.stat(),
            latency_per_token_ms=self.latency_per_token.stat(),
            latency_per_output_token_ms=self.latency_per_output_token.stat(),
            goodput_rps=per_s(self.good) if self._slo is not None else None,
            offered_rps=self.scheduled.rate(),
            completion_rps=self.ends.rate() if self.scheduled.n else None,
            trimmed=self._trim,
            energy_per_output_token_j=energy_j / self.output_tokens if energy_j is not None and self.output_tokens
            else None,
            input_drift=self.input_drift.result(),
            output_drift=self.output_drift.result(),
            server=server_view(telemetry) if telemetry else None,
            turns=[TurnStat(turn=index, completed=turn.completed, prompt_tokens=turn.prompt_tokens / turn.completed,
                            ttft_ms=stat)
                   for index, turn in sorted(self.turns.items()) if (stat := turn.ttft.stat()) is not None] or None,
            steady=self.series.steady() if self.scheduled.rate() is not None else None,
            workers=[WorkerStat(worker=index, requests=w.requests, failed=w.failed, lag_ms=stat,
                                clock_offset_ms=w.clock_offset_ms)
                     for index, w in sorted(self.workers.items()) if (stat := w.lag.stat()) is not None] or None,
        )


class _Series:
    """Each completed serving request's send, end, TTFT, TPOT, E2EL and output tokens, up to EXACT_VALUES requests
    (as many as a distribution keeps exactly): what the steady window is searched in, and measured over."""

    __slots__ = ("columns", "full")

    def __init__(self):
        self.columns = tuple(array("d") for _ in range(6))
        self.full = False

    def add(self, r: RequestRecord, end_s: float) -> None:
        if len(self.columns[0]) >= EXACT_VALUES:
            self.full = True
            return
        tpot = r.tpot_ms
        for column, value in zip(self.columns, (r.start_s, end_s, r.ttft_ms, math.nan if tpot is None else tpot,
                                                r.e2el_ms, r.output_tokens), strict=True):
            column.append(value)

    def steady(self) -> SteadyState | None:
        import numpy as np

        if self.full:
            return None
        start, end, ttft, tpot, e2el, tokens = (np.frombuffer(c, dtype=np.float64) for c in self.columns)
        order = np.argsort(start, kind="stable")  # send order
        window = steady_window(ttft[order])
        if window is None:
            return None
        kept = order[window.warmup:len(order) - window.drain]
        start_s, end_s = float(start[kept].min()), float(end[kept].max())
        span_s = end_s - start_s
        tpots = tpot[kept]
        return SteadyState(warmup=window.warmup, drain=window.drain, requests=int(kept.size), start_s=start_s,
                           last_start_s=float(start[kept].max()), end_s=end_s,
                           output_throughput_tok_s=float(tokens[kept].sum()) / span_s if span_s > 0 else None,
                           ttft_ms=describe(ttft[kept]), tpot_ms=describe(tpots[~np.isnan(tpots)]),
                           e2el_ms=describe(e2el[kept]))


def _push(heap: list, item: tuple, size: int) -> tuple | None:
    """Pushes `item` onto a heap of at most `size`; returns the smallest it pushed out, if it was full."""
    if len(heap) < size:
        heapq.heappush(heap, item)
        return None
    return heapq.heappushpop(heap, item)


def compute_metrics(records: Iterable[RequestRecord], batches: Iterable[BatchRecord] = (), slo: Slo | None = None,
                    trim: int = 0, telemetry: Sequence[TelemetrySample] = (), gpus: int = 0) -> RunMetrics:
    """The run's figures from its requests, all at once; `gpus`: how many GPUs it computed on (0: a CPU run)."""
    aggregate = RunAggregate(slo=slo, trim=trim, gpus=gpus)
    for record in records:
        aggregate.add(record)
    for batch in batches:
        aggregate.add_batch(batch)
    return aggregate.metrics(telemetry)

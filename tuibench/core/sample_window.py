"""A run's telemetry in bounded memory: every source keeps at most CAPACITY samples, at a resolution that halves
each time it fills.

A day-long serving run samples its devices and its server twice a second; a run's state keeps what its metrics
and warnings read from them (energy counters, the server's counters and histograms, contention and throttling)
without keeping every sample: those are in the results store. Thinning folds each pair of neighbours into the
later one, so a counter (energy, the server's cumulative counts and histograms) is still a value it really had
at a time it really had it, and gauges are still a fair sample for a mean. A gauge whose peak is the point
(requests waiting, KV cache in use, other processes on the GPU) keeps the pair's maximum. The first sample is
never folded: counters are read from it.
"""

from tuibench.core.events import TelemetrySample

CAPACITY = 1024  # per source: 8.5 minutes at the 0.5 s interval before the first halving
# Gauges read for their peak (core/server_view.py, core/validity.py): a fold keeps the higher.
PEAK_KEYS = frozenset({"running_requests", "waiting_requests", "kv_cache_used_pct", "other_processes"})


def fold(earlier: TelemetrySample, later: TelemetrySample) -> TelemetrySample:
    """`later`, carrying the higher of the two for every peak gauge."""
    peaks = {key: max(a, b) for key in PEAK_KEYS
             if (a := earlier.values.get(key)) is not None and (b := later.values.get(key)) is not None and a > b}
    return later if not peaks else TelemetrySample(t_s=later.t_s, source=later.source,
                                                   values={**later.values, **peaks})


class SourceWindow:
    """One source's samples: the first, then at most `capacity` more, each standing for `stride` samples."""

    def __init__(self, capacity: int = CAPACITY):
        self.capacity = capacity
        self.first: TelemetrySample | None = None
        self.kept: list[TelemetrySample] = []
        self.stride = 1  # samples folded into each kept one
        self._pending: TelemetrySample | None = None  # the samples since the last kept, folded
        self._pending_n = 0

    def add(self, sample: TelemetrySample) -> None:
        if self.first is None:
            self.first = sample
            return
        self._pending = sample if self._pending is None else fold(self._pending, sample)
        self._pending_n += 1
        if self._pending_n < self.stride:
            return
        self.kept.append(self._pending)
        self._pending, self._pending_n = None, 0
        if len(self.kept) >= self.capacity:
            pairs = len(self.kept) // 2 * 2
            self.kept = [fold(self.kept[i], self.kept[i + 1]) for i in range(0, pairs, 2)] + self.kept[pairs:]
            self.stride *= 2

    def samples(self) -> list[TelemetrySample]:
        """In time order, the latest included (the one being folded): a counter's last value is always there."""
        head = [self.first] if self.first is not None else []
        return head + self.kept + ([self._pending] if self._pending is not None else [])


class TelemetryWindow:
    """Every source's window; `samples()` in time order, as a list of all of them would be."""

    def __init__(self, capacity: int = CAPACITY):
        self._capacity = capacity
        self._sources: dict[str, SourceWindow] = {}
        self.count = 0  # every sample ever added: a reader that saw n knows whether more came
        self._merged: list[TelemetrySample] | None = None  # samples() until the next sample comes

    def add(self, sample: TelemetrySample) -> None:
        self.count += 1
        self._merged = None
        self._sources.setdefault(sample.source, SourceWindow(self._capacity)).add(sample)

    def samples(self) -> list[TelemetrySample]:
        """Read by a run's metrics and by its warnings, each redraw: merged and sorted once per sample added."""
        if self._merged is None:
            self._merged = sorted((s for window in self._sources.values() for s in window.samples()),
                                  key=lambda s: s.t_s)
        return self._merged

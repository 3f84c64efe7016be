"""Capacity under an SLO: the highest request rate at which a library meets every objective.

The objectives are percentiles of the run's latencies ("ttft_p99=500,tpot_p99=50", in ms). The search is a
bracket over rates on one server: from a start rate it doubles while the objectives hold (halves while they do
not), and once a rate that holds and one that does not are known, bisects between them until they are within the
asked relative precision. Each probe is a serving run, stored as any other.
"""

from collections.abc import Iterator

import msgspec

from tuibench.core.metrics import RunMetrics, Stat

LATENCIES = ("ttft", "tpot", "itl", "e2el")
QUANTILES = ("mean", "p50", "p90", "p99")


class Objective(msgspec.Struct, frozen=True):
    latency: str  # ttft, tpot, itl, e2el
    quantile: str  # mean, p50, p90, p99
    limit_ms: float

    @property
    def label(self) -> str:
        return f"{self.latency}_{self.quantile}≤{self.limit_ms:g} ms"

    def value_ms(self, metrics: RunMetrics) -> float | None:
        stat: Stat | None = getattr(metrics, f"{self.latency}_ms")
        return None if stat is None else getattr(stat, self.quantile)


def parse_objectives(text: str) -> tuple[Objective, ...]:
    """'ttft_p99=500,tpot_p99=50' -> objectives; ValueError naming what is off."""
    objectives = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        latency, _, quantile = name.partition("_")
        if latency not in LATENCIES or quantile not in QUANTILES:
            raise ValueError(f"unknown objective {name!r}: use {'/'.join(LATENCIES)} with _{'/_'.join(QUANTILES)}, "
                             "e.g. ttft_p99=500,tpot_p99=50")
        try:
            limit = float(value)
        except ValueError:
            raise ValueError(f"{name} needs milliseconds, e.g. {name}=500") from None
        if limit <= 0:
            raise ValueError(f"{name}={value}: a limit must be positive")
        objectives.append(Objective(latency, quantile, limit))
    if not objectives:
        raise ValueError("give at least one objective, e.g. ttft_p99=500,tpot_p99=50")
    return tuple(objectives)


def missed(objectives: tuple[Objective, ...], metrics: RunMetrics) -> list[str]:
    """The objectives a run missed, in words. A failed request misses, a latency not measured misses, and so does
    a server that did not keep up: requests coming back slower than they were sent is a queue that grows, which a
    longer run would show in every latency."""
    from tuibench.core.comparison import falls_behind

    found = []
    if metrics.failed:
        found.append(f"{metrics.failed} failed request(s)")
    if falls_behind(metrics.offered_rps, metrics.completion_rps):
        found.append(f"came back at {metrics.completion_rps:.3g} req/s of {metrics.offered_rps:.3g} sent")
    for objective in objectives:
        value = objective.value_ms(metrics)
        if value is None or value > objective.limit_ms:
            found.append(f"{objective.latency} {objective.quantile} {'N/A' if value is None else f'{value:,.1f}'} ms "
                         f"> {objective.limit_ms:g}")
    return found


class Bracket(msgspec.Struct, frozen=True, kw_only=True):
    met_rps: float | None  # the highest rate that met the objectives (None: none did)
    missed_rps: float | None  # the lowest that did not (None: none missed, up to the ceiling)


def search(start_rps: float, precision: float, floor_rps: float, ceiling_rps: float) -> Iterator[float]:
    """The rates to probe, one at a time: send the generator whether each met the objectives (`.send(bool)`);
    it returns the Bracket when done (StopIteration.value)."""
    met: float | None = None
    failed: float | None = None
    rate = start_rps
    while True:
        ok = yield rate
        if ok:
            met = rate if met is None else max(met, rate)
        else:
            failed = rate if failed is None else min(failed, rate)
        if met is None:  # halving down to a rate that holds
            if rate / 2 < floor_rps:
                return Bracket(met_rps=None, missed_rps=failed)
            rate /= 2
        elif failed is None:  # doubling up to one that does not
            if rate >= ceiling_rps:
                return Bracket(met_rps=met, missed_rps=None)
            rate = min(rate * 2, ceiling_rps)
        elif (failed - met) / met <= precision:
            return Bracket(met_rps=met, missed_rps=failed)
        else:
            rate = (met + failed) / 2

"""Capacity under an SLO: the highest request rate at which a library meets every objective.

The objectives are percentiles of the run's latencies ("ttft_p99=500,tpot_p99=50", in ms). The search is a
bracket over rates on one server: from a start rate it doubles while the objectives hold (halves while they do
not), and once a rate that holds and one that does not are known, bisects between them until they are within the
asked relative precision. Each probe is a serving run, stored as any other.

A capacity search is a step of a plan (scenario "capacity"): its probes are runs of that step, on one server.
"""

import math
from collections.abc import Iterator
from typing import Annotated

import msgspec

from tuibench.core.metrics import RunMetrics, Stat, falls_behind
from tuibench.core.options import Opt

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


def _checked_objectives(text: str) -> str:
    """Capacity objectives as typed, once they parse (a plan keeps them as text)."""
    parse_objectives(text)
    return text


_CAPACITY = frozenset({"capacity"})
_Rate = Annotated[float, msgspec.Meta(gt=0.0)]


class CapacitySearch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a plan's capacity steps search: the keys of a plan file's [plan.capacity] table (options each)."""

    slo: Annotated[str, Opt(
        "the capacity scenario's objectives on latency percentiles (ms), e.g. ttft_p99=500,tpot_p99=50", "capacity",
        _CAPACITY, flags=("--capacity-slo",), parse=_checked_objectives, placeholder="ttft_p99=1000")] = ""
    start_rate: Annotated[_Rate, Opt("the first rate probed", "capacity", _CAPACITY, unit="req/s")] = 1.0
    # The bracket's width relative to the rate that held.
    precision: Annotated[_Rate, Opt(
        "stop when the rate that held and the one that did not are this close, relative", "capacity",
        _CAPACITY)] = 0.1
    min_rate: Annotated[_Rate, Opt("give up below this", "capacity", _CAPACITY, unit="req/s")] = 0.05
    max_rate: Annotated[_Rate, Opt("stop doubling here", "capacity", _CAPACITY, unit="req/s")] = 256.0
    # Without num_requests, a probe sends this long at its rate (at least 16 requests): a short burst would pass at
    # any rate, since a queue takes time to show.
    probe_seconds: Annotated[_Rate, Opt(
        "without --num-requests, each probe sends this long at its rate, at least 16 requests", "capacity",
        _CAPACITY, unit="s")] = 10.0

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return parse_objectives(self.slo)

    def check(self) -> None:
        """ValueError naming what is off (each rate's sign is its type's to check)."""
        self.objectives  # noqa: B018 - parsing is the check
        if self.min_rate > self.max_rate or not self.min_rate <= self.start_rate <= self.max_rate:
            raise ValueError(f"the start rate {self.start_rate:g} must lie within the min rate {self.min_rate:g} and "
                             f"the max rate {self.max_rate:g}")

    def rates(self) -> Iterator[float]:
        return search(self.start_rate, self.precision, self.min_rate, self.max_rate)

    def requests_at(self, rate_rps: float, asked: int | None) -> int:
        return asked or max(16, math.ceil(rate_rps * self.probe_seconds))


class Probe(msgspec.Struct, frozen=True, kw_only=True):
    rate_rps: float
    run_id: int | None
    status: str
    met: bool
    missed: list[str]  # why not, in words
    ttft_p99_ms: float | None = None
    tpot_p99_ms: float | None = None
    completed_rps: float | None = None
    measured_ms: dict[str, float | None] = {}  # each objective's latency as this probe measured it, by its label


class Capacity(msgspec.Struct, frozen=True, kw_only=True):
    """A capacity step's outcome: every probe, and the bracket once the search ended."""

    library: str
    model: str = ""
    dataset: str = ""  # the workload's label
    slo: str = ""
    probes: list[Probe] = []
    bracket: Bracket | None = None
    skipped: str | None = None  # why it was not probed, or stopped (unavailable here, interrupted)

    @property
    def capacity_rps(self) -> float | None:
        return self.bracket.met_rps if self.bracket else None

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return parse_objectives(self.slo)


def judge(rate_rps: float, run_id: int | None, status: str, metrics: RunMetrics | None, error: str | None,
          objectives: tuple[Objective, ...]) -> Probe:
    """A probe's verdict from its run: met every objective, or what it missed."""
    if metrics is None or not metrics.completed:
        return Probe(rate_rps=rate_rps, run_id=run_id, status=status, met=False,
                     missed=[error or "no request completed"])
    why = missed(objectives, metrics)
    return Probe(rate_rps=rate_rps, run_id=run_id, status=status, met=not why, missed=why,
                 ttft_p99_ms=metrics.ttft_ms.p99 if metrics.ttft_ms else None,
                 tpot_p99_ms=metrics.tpot_ms.p99 if metrics.tpot_ms else None,
                 completed_rps=metrics.completion_rps or metrics.request_throughput_rps,
                 measured_ms={o.label: o.value_ms(metrics) for o in objectives})


def verdict(capacities: list[Capacity]) -> str:
    """One line, the library that sustains the most first: 'vllm sustains 2.1 req/s under the SLO (…),
    transformers 0.6 req/s'; then those that held at no rate, then those not measured."""
    parts = []
    ranked = sorted(capacities, key=lambda c: (c.bracket is None, -(c.capacity_rps or 0.0)))
    for number, capacity in enumerate(ranked):
        if capacity.bracket is None:
            parts.append(f"{capacity.library} was not measured ({capacity.skipped or 'not run'})")
        elif capacity.capacity_rps is None:
            parts.append(f"{capacity.library} meets it at no rate tried (down to "
                         f"{capacity.bracket.missed_rps:.3g} req/s)")
        else:
            at_least = "at least " if capacity.bracket.missed_rps is None else ""  # held up to the ceiling
            sustains = "sustains " if number == 0 else ""
            parts.append(f"{capacity.library} {sustains}{at_least}{capacity.capacity_rps:.3g} req/s")
    slo = ", ".join(o.label for o in capacities[0].objectives) if capacities and capacities[0].slo else ""
    return f"{parts[0]} under the SLO ({slo})" + "".join(f", {part}" for part in parts[1:]) if parts else ""


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

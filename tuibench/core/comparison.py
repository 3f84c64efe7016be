"""Runs side by side: the comparison the user came for, as data that every front end and export reads.

Runs are grouped by workload (dataset, scenario and, when serving, the offered rate); within a group
each library is a column. Every metric row marks the best column and gives each value's ratio to the
baseline column. Serving runs are also read as sweeps: per dataset and library, throughput and latency
against the offered rate, with the knee where the library saturates.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from tuibench.core.metrics import RunMetrics, Stat
from tuibench.core.plan import rate_label
from tuibench.core.store import RunRow


def _stat(field: str, quantile: str) -> Callable[[RunMetrics], float | None]:
    def read(metrics: RunMetrics) -> float | None:
        stat: Stat | None = getattr(metrics, field)
        return getattr(stat, quantile) if stat else None

    return read


@dataclass(frozen=True)
class Metric:
    key: str  # the name in exports
    label: str  # what a table says
    unit: str
    higher_is_better: bool
    read: Callable[[RunMetrics], float | None]


METRICS: tuple[Metric, ...] = (
    Metric("output_throughput_tok_s", "output tok/s", "tok/s", True, lambda m: m.output_throughput_tok_s),
    Metric("total_throughput_tok_s", "total tok/s", "tok/s", True, lambda m: m.total_throughput_tok_s),
    Metric("request_throughput_rps", "requests/s", "req/s", True, lambda m: m.request_throughput_rps),
    *(Metric(f"{name.lower()}_{q}_ms", f"{name} {q}", "ms", False, _stat(f"{name.lower()}_ms", q))
      for name in ("TTFT", "TPOT", "ITL", "E2EL") for q in ("p50", "p99")),
    Metric("failed", "failed requests", "", False, lambda m: m.failed),
)


class Column(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # the library, with the model or the run id where that is needed to tell columns apart
    library: str
    model: str
    run_id: int
    status: str


class Cell(msgspec.Struct, frozen=True, kw_only=True):
    value: float | None
    ratio: float | None = None  # value / the baseline column's value


class Row(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    label: str
    unit: str
    higher_is_better: bool
    cells: list[Cell]  # one per column
    best: int | None  # the best column's index, when at least two columns have a value


class Group(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str
    scenario: str
    rate: float | None  # serving: the offered req/s (None: all at once); offline: None
    columns: list[Column]
    baseline: int | None  # the column the ratios are against
    rows: list[Row]

    @property
    def title(self) -> str:
        rate = f" @ {rate_label(self.rate)} req/s" if self.scenario == "serving" else ""
        return f"{self.dataset} · {self.scenario}{rate}"


class SweepPoint(msgspec.Struct, frozen=True, kw_only=True):
    rate: float | None  # offered
    run_id: int
    request_throughput_rps: float | None  # achieved
    output_throughput_tok_s: float | None
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    tpot_p50_ms: float | None
    tpot_p99_ms: float | None
    e2el_p50_ms: float | None
    schedule_lag_p99_ms: float | None  # a client that could not keep up shows here, not in the server's figures
    offered_rps: float | None  # as sent (None: all at once)
    completion_rps: float | None  # as they came back
    failed: int


class Sweep(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str
    label: str  # the column label of the library
    library: str
    points: list[SweepPoint]  # by offered rate, all-at-once last
    capacity_rps: float | None  # the most requests/s it served at any rate
    saturated: bool  # requests queued at some offered rate of the sweep
    knee_rate: float | None  # the lowest such rate (None with saturated: all at once)


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    baseline: str | None
    groups: list[Group]
    sweeps: list[Sweep]


# Requests that come back at under this share of the rate they were sent at are queueing: the server is saturated.
KEEPS_UP = 0.9


def compare(runs: Sequence[RunRow], baseline: str | None = None) -> Comparison:
    """`runs` side by side (profile runs are left out: their comparison is the module shares)."""
    runs = [r for r in runs if r.scenario != "profile"]
    names = _library_names(runs)
    baseline = baseline or (runs[0].library if runs else None)
    groups: dict[tuple, list[RunRow]] = {}
    for run in runs:
        groups.setdefault(run.spec.workload, []).append(run)
    return Comparison(
        baseline=baseline,
        groups=[_group(key, members, _column_labels(members, names), baseline) for key, members in groups.items()],
        sweeps=_sweeps(runs, names),
    )


def _library_names(runs: Sequence[RunRow]) -> dict[int, str]:
    """Each run's library, and its model too when the runs span models."""
    several_models = len({r.model for r in runs}) > 1
    return {r.id: f"{r.library} · {r.model}" if several_models else r.library for r in runs}


def _column_labels(group: Sequence[RunRow], names: dict[int, str]) -> dict[int, str]:
    """The columns of one workload: the library's name, with the run id where a library comes twice."""
    counts = Counter(names[r.id] for r in group)
    return {r.id: names[r.id] + (f" #{r.id}" if counts[names[r.id]] > 1 else "") for r in group}


def _group(key: tuple, runs: list[RunRow], labels: dict[int, str], baseline: str | None) -> Group:
    dataset, scenario, rate = key
    columns = [Column(label=labels[r.id], library=r.library, model=r.model, run_id=r.id, status=r.status) for r in runs]
    base = next((i for i, c in enumerate(columns) if baseline in (c.library, c.label)), None)
    rows = []
    for metric in METRICS:
        values = [metric.read(r.metrics) if r.metrics else None for r in runs]
        if all(v is None for v in values):
            continue
        base_value = values[base] if base is not None else None
        cells = [Cell(value=v, ratio=v / base_value if v is not None and base_value else None) for v in values]
        present = [(v, i) for i, v in enumerate(values) if v is not None]
        best = None
        if len({v for v, _ in present}) > 1:  # two values at least, and not all equal
            best = (max if metric.higher_is_better else min)(present, key=lambda pair: pair[0])[1]  # ties: the first
        rows.append(Row(key=metric.key, label=metric.label, unit=metric.unit, higher_is_better=metric.higher_is_better,
                        cells=cells, best=best))
    return Group(dataset=dataset, scenario=scenario, rate=rate, columns=columns, baseline=base, rows=rows)


def _sweeps(runs: Sequence[RunRow], names: dict[int, str]) -> list[Sweep]:
    lines: dict[tuple[str, str], list[RunRow]] = {}
    for run in runs:
        if run.scenario == "serving":
            lines.setdefault((run.dataset, names[run.id]), []).append(run)
    sweeps = []
    for (dataset, label), members in lines.items():
        members.sort(key=lambda r: math.inf if r.spec.serving.request_rate is None else r.spec.serving.request_rate)
        points = [_point(r) for r in members]
        served = [p.request_throughput_rps for p in points if p.request_throughput_rps is not None]
        at = knee(points)
        sweeps.append(Sweep(dataset=dataset, label=label, library=members[0].library, points=points,
                            capacity_rps=max(served) if served else None, saturated=at is not None,
                            knee_rate=at.rate if at else None))
    return sweeps


def _point(run: RunRow) -> SweepPoint:
    m = run.metrics

    def read(field: str, quantile: str) -> float | None:
        return _stat(field, quantile)(m) if m else None

    return SweepPoint(
        rate=run.spec.serving.request_rate, run_id=run.id,
        request_throughput_rps=m.request_throughput_rps if m else None,
        output_throughput_tok_s=m.output_throughput_tok_s if m else None,
        ttft_p50_ms=read("ttft_ms", "p50"), ttft_p99_ms=read("ttft_ms", "p99"), tpot_p50_ms=read("tpot_ms", "p50"),
        tpot_p99_ms=read("tpot_ms", "p99"), e2el_p50_ms=read("e2el_ms", "p50"),
        schedule_lag_p99_ms=read("schedule_lag_ms", "p99"), offered_rps=m.offered_rps if m else None,
        completion_rps=m.completion_rps if m else None, failed=m.failed if m else 0,
    )


def saturated(point: SweepPoint) -> bool:
    """Requests came back slower than they were sent: they queue. Everything sent at once always queues."""
    if point.rate is None:
        return True
    if point.offered_rps is None or point.completion_rps is None:
        return False
    return point.completion_rps < KEEPS_UP * point.offered_rps


def knee(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """The point of the lowest offered rate at which the library no longer keeps up (`saturated`), the points
    being in offered order with all-at-once last; None when it kept up with every rate.

    Not the achieved throughput against the nominal rate: over a short run the last requests' latency counts in
    its duration, and a few Poisson arrivals are seldom at the nominal rate. Completions spread over a longer
    time than the arrivals did is what a queue looks like, whatever the run's length."""
    return next((p for p in points if saturated(p)), None)

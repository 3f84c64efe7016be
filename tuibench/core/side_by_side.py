"""Runs side by side: the comparison the user came for, as data that every front end and export reads (the
comparison document, core/document.py, carries it).

Runs are grouped by workload (dataset, scenario and, when serving, the offered rate); within a group
each library is a column. Every metric row marks the best column and gives each value's ratio to the
baseline column. Serving runs are also read as sweeps: per dataset and library, throughput and latency
against the offered rate, with the knee where the library saturates.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence

import msgspec

from tuibench.core.catalogue import BY_KEY, COMPARED, REQUEST_RATE, SWEEP_KEYS, Metric
from tuibench.core.metrics import RunMetrics, falls_behind
from tuibench.core.plan import rate_label
from tuibench.core.stats import Verdict, difference, estimate
from tuibench.core.store import RunRow


class Column(msgspec.Struct, frozen=True, kw_only=True):
    label: str  # the library, with the model or the run id where that is needed to tell columns apart
    library: str
    model: str
    run_id: int  # the first of its runs
    status: str  # "finished" when every run of it did, else the first other status
    run_ids: list[int] = []  # its runs: one, or the repeats of one plan step (--repeat N)
    warnings: int = 0  # validity warnings over its runs


class Cell(msgspec.Struct, frozen=True, kw_only=True):
    value: float | None  # the run's value, or the mean of the repeats'
    ratio: float | None = None  # value / the baseline column's value
    n: int = 1  # runs the value is over
    low: float | None = None  # the 95 % confidence interval of the mean, with repeats
    high: float | None = None
    verdict: Verdict | None = None  # against the baseline: higher, lower, or within noise


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
        rate = f" @ {rate_label(self.rate)} {REQUEST_RATE.unit}" if self.scenario == "serving" else ""
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
    repeats: int = 1  # runs the point is the mean of


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


def compare(runs: Sequence[RunRow], baseline: str | None = None) -> Comparison:
    """`runs` side by side (profile runs are left out: their comparison is the module shares). The repeats of one
    plan step (--repeat N) are one column: their mean, with its confidence interval."""
    runs = [r for r in runs if r.scenario != "profile"]
    names = _library_names(runs)
    baseline = baseline or (runs[0].library if runs else None)
    groups: dict[tuple, list[list[RunRow]]] = {}
    for repeats in repeat_sets(runs):
        groups.setdefault(repeats[0].spec.workload, []).append(repeats)
    return Comparison(
        baseline=baseline,
        groups=[_group(key, members, _column_labels(members, names), baseline) for key, members in groups.items()],
        sweeps=_sweeps(runs, names),
    )


def repeat_sets(runs: Sequence[RunRow]) -> list[list[RunRow]]:
    """Runs of one plan with one spec, together, in the order each set first comes. Runs of separate plans stay
    apart even with one spec: a library upgraded in between is exactly what such a comparison is for."""
    sets: dict[tuple, list[RunRow]] = {}
    for run in runs:
        key = (run.plan_id, run.spec.repeat_key) if run.plan_id is not None else (None, run.id)
        sets.setdefault(key, []).append(run)
    return list(sets.values())


def _library_names(runs: Sequence[RunRow]) -> dict[int, str]:
    """Each run's library, with the engine settings it set (prefix cache, speculation), and its model too when the
    runs span models."""
    several_models = len({r.model for r in runs}) > 1

    def name(run: RunRow) -> str:
        settings = run.spec.engine_settings
        engine = run.library + (f" ({', '.join(settings)})" if settings else "")
        return f"{engine} · {run.model}" if several_models else engine

    return {r.id: name(r) for r in runs}


def _column_labels(group: Sequence[list[RunRow]], names: dict[int, str]) -> dict[int, str]:
    """The columns of one workload: the library's name, with the run id where a library comes twice, and ×N for
    the repeats of one step."""
    counts = Counter(names[runs[0].id] for runs in group)
    labels = {}
    for runs in group:
        first = runs[0].id
        labels[first] = (names[first] + (f" #{first}" if counts[names[first]] > 1 else "")
                         + (f" ×{len(runs)}" if len(runs) > 1 else ""))
    return labels


def _column(runs: list[RunRow], label: str) -> Column:
    first = runs[0]
    status = next((r.status for r in runs if r.status != "finished"), "finished")
    return Column(label=label, library=first.library, model=first.model, run_id=first.id, status=status,
                  run_ids=[r.id for r in runs], warnings=sum(len(r.warnings) for r in runs))


def single_interval(runs: Sequence[RunRow], metric: Metric) -> tuple[float, float] | None:
    """A single run's own 95 % interval of the figure (a latency percentile), what a verdict on single runs weighs
    beside the run-to-run noise; None for repeats (their spread says it) or a figure without one."""
    if len(runs) != 1 or metric.interval is None or runs[0].metrics is None:
        return None
    return metric.interval(runs[0].metrics)


def _cell(values: list[float], base_values: list[float] | None, interval=None, base_interval=None) -> Cell:
    found = estimate(values)
    if found is None:
        return Cell(value=None, n=0)
    base = estimate(base_values) if base_values else None
    judged = difference(base_values, values, base_interval, interval) \
        if base_values is not None and base_values is not values else None
    return Cell(value=found.mean, ratio=found.mean / base.mean if base and base.mean else None, n=found.n,
                low=found.low, high=found.high, verdict=judged.verdict if judged else None)


def _group(key: tuple, sets: list[list[RunRow]], labels: dict[int, str], baseline: str | None) -> Group:
    dataset, scenario, rate = key
    columns = [_column(runs, labels[runs[0].id]) for runs in sets]
    base = next((i for i, c in enumerate(columns) if baseline in (c.library, c.label)), None)
    rows = []
    for metric in COMPARED:
        per_column = [[v for r in runs if r.metrics and (v := metric.read(r.metrics)) is not None] for runs in sets]
        if not any(per_column):
            continue
        base_values = per_column[base] if base is not None and per_column[base] else None
        intervals = [single_interval(runs, metric) for runs in sets]
        cells = [_cell(values, base_values, interval, intervals[base] if base is not None else None)
                 for values, interval in zip(per_column, intervals, strict=True)]
        values = [cell.value for cell in cells]
        present = [(v, i) for i, v in enumerate(values) if v is not None]
        best = None
        if len({v for v, _ in present}) > 1:  # two values at least, and not all equal
            ranked = sorted(present, key=lambda pair: -pair[0] if metric.higher_is_better else pair[0])  # ties: first
            (_, first), (_, second) = ranked[0], ranked[1]
            # ★ only for a lead beyond the noise: a best that the runner-up matches within it is no best.
            lead = difference(per_column[second], per_column[first], intervals[second], intervals[first])
            best = first if lead is None or lead.verdict != "within noise" else None
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
        by_rate: dict[float | None, list[RunRow]] = {}
        for run in members:  # repeats of a rate (--repeat N) make one point, their mean
            by_rate.setdefault(run.spec.serving.request_rate, []).append(run)
        points = [_point(by_rate[rate]) for rate in sorted(by_rate, key=lambda r: math.inf if r is None else r)]
        served = [p.request_throughput_rps for p in points if p.request_throughput_rps is not None]
        at = knee(points)
        sweeps.append(Sweep(dataset=dataset, label=label, library=members[0].library, points=points,
                            capacity_rps=max(served) if served else None, saturated=at is not None,
                            knee_rate=at.rate if at else None))
    return sweeps


def _point(runs: list[RunRow]) -> SweepPoint:
    """One offered rate of a sweep: its run, or the mean of its repeats, figure by figure."""

    def mean(read: Callable[[RunMetrics], float | None]) -> float | None:
        values = [v for r in runs if r.metrics and (v := read(r.metrics)) is not None]
        return math.fsum(values) / len(values) if values else None

    return SweepPoint(
        rate=runs[0].spec.serving.request_rate, run_id=runs[0].id, repeats=len(runs),
        **{key: mean(BY_KEY[key].read) for key in (*SWEEP_KEYS, "offered_rps", "completion_rps")},
        failed=sum(r.metrics.failed for r in runs if r.metrics),
    )


def saturated(point: SweepPoint) -> bool:
    """Requests came back slower than they were sent: they queue. Everything sent at once always queues."""
    return point.rate is None or falls_behind(point.offered_rps, point.completion_rps)


def knee(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """The point of the lowest offered rate at which the library no longer keeps up (`saturated`), the points
    being in offered order with all-at-once last; None when it kept up with every rate.

    Not the achieved throughput against the nominal rate: over a short run the last requests' latency counts in
    its duration, and a few Poisson arrivals are seldom at the nominal rate. Completions spread over a longer
    time than the arrivals did is what a queue looks like, whatever the run's length."""
    return next((p for p in points if saturated(p)), None)

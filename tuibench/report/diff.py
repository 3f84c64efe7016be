"""`tuibench runs diff A B`: two runs (each with the repeats of its plan step, if any), metric by metric, and for
each whether the difference is larger than the noise."""

from collections.abc import Sequence

from rich.table import Table

from tuibench.core.catalogue import BY_KEY, COMPARED, Metric
from tuibench.core.side_by_side import repeat_sets, single_interval
from tuibench.core.stats import Difference, difference, estimate
from tuibench.core.store import ResultsStore, RunRow
from tuibench.core.units import fmt


def with_repeats(store: ResultsStore, run_id: int) -> list[RunRow]:
    """The run, and the other runs of its plan with the same spec (--repeat N), in run order."""
    run = store.run_row(run_id)
    if run.plan_id is None:
        return [run]
    return next(runs for runs in repeat_sets(store.get_plan(run.plan_id).runs) if any(r.id == run_id for r in runs))


def _values(runs: Sequence[RunRow], metric: Metric) -> list[float]:
    return [v for r in runs if r.metrics and (v := metric.read(r.metrics)) is not None]


def _side(runs: Sequence[RunRow], metric: Metric) -> str:
    found = estimate(_values(runs, metric))
    if found is None:
        return "–"
    digits = metric.digits
    half = "" if found.low is None else f" ±{fmt((found.high - found.low) / 2, digits)}"
    return fmt(found.mean, digits) + half


def judged(a: Sequence[RunRow], b: Sequence[RunRow], metric: Metric) -> Difference | None:
    return difference(_values(a, metric), _values(b, metric), single_interval(a, metric), single_interval(b, metric))


def describe(difference_: Difference, metric: Metric) -> str:
    """"faster by 84.0 %", "slower by 12.1 %", "within noise" for one metric, as a user reads it."""
    if difference_.verdict == "within noise":
        return "within noise"
    better = (difference_.verdict == "higher") == metric.higher_is_better
    if metric.speed:
        word = "faster" if better else "slower"
    else:
        word = "better" if better else "worse"
    return f"{word} by {abs(difference_.pct):.1f} %"


def diff_table(a: Sequence[RunRow], b: Sequence[RunRow]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0))
    a_name, b_name = _name(a), _name(b)
    for column in ("metric", a_name, b_name, "B/A", "B against A"):
        table.add_column(column, justify="left" if column in ("metric", "B against A") else "right", no_wrap=True)
    for metric in COMPARED:
        found = judged(a, b, metric)
        if found is None and not _values(a, metric) and not _values(b, metric):
            continue
        table.add_row(metric.label, _side(a, metric), _side(b, metric), f"{found.ratio:.2f}×" if found else "–",
                      describe(found, metric) if found else "–")
    return table


def headline(a: Sequence[RunRow], b: Sequence[RunRow]) -> str:
    """The one line a user came for: output throughput, B against A, and how that was judged."""
    metric = BY_KEY["output_throughput_tok_s"]
    found = judged(a, b, metric)
    if found is None:
        return f"no {metric.label} on one side: nothing to compare"
    return (f"{_name(b)} against {_name(a)}: {metric.label} {found.ratio:.2f}× ({found.pct:+.1f} %), "
            f"{describe(found, metric)} ({found.method})")


def _name(runs: Sequence[RunRow]) -> str:
    ids = [r.id for r in runs]
    return f"run {ids[0]}" + (f" ×{len(ids)} (runs {', '.join(map(str, ids))})" if len(ids) > 1 else "")

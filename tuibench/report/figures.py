"""The paper's figures as files, PNG and SVG, drawn with matplotlib (Agg: no display needed):

- serving-DATASET: output tok/s, TTFT and TPOT against the offered request rate, a line per
  library, its knee marked (the paper's Figures 1, 4 and 5);
- offline: output throughput per library and dataset;
- module-shares: each module's share of the step against the input length, per library and phase (Figure 2);
- capacity (capacity-DATASET when several were searched): each objective against the probed rate, per library;
- datasets: the input and output length distributions of the plan's datasets (Figure 3).
"""

import math
from collections.abc import Sequence
from pathlib import Path

from tuibench.analysis.categories import LABELS as CATEGORY_LABELS
from tuibench.core.catalogue import BY_KEY, LATENCY_UNIT, REQUEST_RATE
from tuibench.core.document import ComparisonDocument, verdicts_of
from tuibench.core.side_by_side import Sweep
from tuibench.core.spec import DatasetSpec
from tuibench.report.capacity_figure import capacity_figure
from tuibench.report.explain import attribution_title, steps_of

INF_LABEL = "all at\nonce"
# The paper's serving figure, a panel each: throughput, then the latencies (a log scale where they span decades).
SERVING_PANELS = ("output_throughput_tok_s", "ttft_p50_ms", "tpot_p50_ms")


def pyplot():
    """matplotlib's pyplot on the Agg backend: files only, never a window (set before pyplot is first imported)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def save_figure(figure, out_dir: Path, name: str) -> list[Path]:
    """`figure` as NAME.png and NAME.svg in `out_dir`, then closed; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        path = out_dir / f"{name}{suffix}"
        figure.savefig(path, dpi=120, bbox_inches="tight")
        written.append(path)
    pyplot().close(figure)
    return written


def write_figures(document: ComparisonDocument, out_dir: Path) -> list[Path]:
    """Every figure the document has data for, as PNG and SVG in `out_dir`; returns the files written."""
    plt = pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    libraries = list(dict.fromkeys([*(r.library for r in document.results), *(p.library for p in document.profiles)]))
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(libraries)}
    figures = []
    for dataset in dict.fromkeys(s.dataset for s in document.comparison.sweeps):
        figures.append((f"serving-{_slug(dataset)}",
                        _serving([s for s in document.comparison.sweeps if s.dataset == dataset], dataset, colours)))
    if any(r.scenario == "offline" for r in document.results):
        figures.append(("offline", _offline(document, colours)))
    if document.profiles:
        figures.append(("module-shares", _module_shares(document)))
    searched = [(key, group) for key, group, _ in verdicts_of(document.capacities) if any(c.probes for c in group)]
    for (_, dataset, _), group in searched:
        figures.append(("capacity" if len(searched) == 1 else f"capacity-{_slug(dataset)}", capacity_figure(plt, group)))
    if document.datasets:
        figures.append(("datasets", _datasets(document.datasets)))
    for attribution in document.explanation.attributions if document.explanation else ():
        figures.append((f"explain-{attribution.phase}-{attribution.input_len}", _waterfall(attribution)))
    return [path for name, figure in figures for path in save_figure(figure, out_dir, name)]


def _waterfall(attribution):
    """From A's step to B's through each category's change, a bar per change from where the running total stood
    (red: B slower there, green: faster), A's and B's steps in grey at the ends."""
    plt = pyplot()
    changes = steps_of(attribution, max_rows=12)
    labels = [attribution.a] + [label or "the rest" for label, _ in changes] + [attribution.b]
    starts, heights, colours = [0.0], [attribution.a_step_ms], ["0.55"]
    total = attribution.a_step_ms
    for _, gap in changes:
        starts.append(total if gap >= 0 else total + gap)
        heights.append(abs(gap))
        colours.append("tab:red" if gap > 0 else "tab:green")
        total += gap
    starts.append(0.0)
    heights.append(attribution.b_step_ms)
    colours.append("0.55")
    figure, axis = plt.subplots(figsize=(max(6.0, 0.75 * len(labels)), 4.2), layout="constrained")
    axis.bar(range(len(labels)), heights, bottom=starts, color=colours)
    for index, (label, gap) in enumerate(changes, start=1):
        axis.annotate(f"{gap:+,.1f}", (index, starts[index] + heights[index]), ha="center", va="bottom", fontsize=7)
    axis.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
    axis.set_ylabel("ms per step")
    axis.set_title(attribution_title(attribution), fontsize=9, loc="left", wrap=True)
    return figure


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(text).stem)


def _rate_axis(sweeps: Sequence[Sweep]) -> tuple[dict[float | None, float], list[float], list[str]]:
    """x positions of the offered rates: finite ones as they are, all-at-once past the largest."""
    finite = sorted({p.rate for s in sweeps for p in s.points if p.rate is not None})
    positions: dict[float | None, float] = {r: r for r in finite}
    ticks, labels = list(finite), [f"{r:g}" for r in finite]
    if any(p.rate is None for s in sweeps for p in s.points):
        positions[None] = (finite[-1] * 1.5 if finite else 1.0)
        ticks.append(positions[None])
        labels.append(INF_LABEL)
    return positions, ticks, labels


def _serving(sweeps: Sequence[Sweep], dataset: str, colours):
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    positions, ticks, labels = _rate_axis(sweeps)
    panels = [BY_KEY[key] for key in SERVING_PANELS]
    for axis, metric in zip(axes, panels, strict=True):
        field = metric.key  # a sweep point's field is the metric's key
        for sweep in sweeps:
            points = [(positions[p.rate], getattr(p, field)) for p in sweep.points if getattr(p, field) is not None]
            if not points:
                continue
            axis.plot(*zip(*points, strict=True), marker="o", label=sweep.label, color=colours.get(sweep.library))
            if sweep.saturated:
                at = next(p for p in sweep.points if p.rate == sweep.knee_rate)
                if getattr(at, field) is not None:
                    axis.scatter([positions[at.rate]], [getattr(at, field)], s=160, facecolors="none",
                                 edgecolors=colours.get(sweep.library), linewidths=1.5)
        axis.set_title(metric.axis)
        axis.set_xlabel(REQUEST_RATE.axis)
        axis.set_xticks(ticks, labels)
        axis.grid(alpha=0.3)
        if metric.unit == LATENCY_UNIT and _spans_decades(axis):
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            axis.set_yscale("log")  # one library's latency can be ten times another's: keep both readable
            axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
            axis.yaxis.set_minor_formatter(NullFormatter())
        else:
            # From zero: a zoomed axis drew 46.2 against 47.2 tok/s, a gap within noise, as a large one.
            axis.set_ylim(bottom=0)
    axes[0].legend(title="library (○ knee)")
    figure.suptitle(f"{dataset}: serving, {panels[0].label} and latency against load")
    return figure


def _spans_decades(axis) -> bool:
    values = [y for line in axis.get_lines() for y in line.get_ydata() if y and y > 0]
    return bool(values) and max(values) / min(values) > 10


def _offline(document: ComparisonDocument, colours):
    from matplotlib import pyplot as plt

    results = [r for r in document.results if r.scenario == "offline"]
    datasets = list(dict.fromkeys(r.dataset for r in results))
    libraries = list(dict.fromkeys(r.library for r in results))
    figure, axis = plt.subplots(figsize=(max(5, 1.8 * len(datasets) * max(1, len(libraries)) / 2), 4),
                                layout="constrained")
    width = 0.8 / max(1, len(libraries))
    metric = BY_KEY["output_throughput_tok_s"]
    for j, library in enumerate(libraries):
        xs, ys = [], []
        for i, dataset in enumerate(datasets):
            value = next((r.metrics[metric.key] for r in results
                          if r.dataset == dataset and r.library == library), None)
            if value is not None:
                xs.append(i + (j - (len(libraries) - 1) / 2) * width)
                ys.append(value)
        bars = axis.bar(xs, ys, width, label=library, color=colours.get(library))
        axis.bar_label(bars, fmt=f"%.{metric.digits}f", fontsize=8)
    axis.set_xticks(range(len(datasets)), datasets)
    axis.set_ylabel(metric.axis)
    axis.set_title(f"offline batch: {metric.label}")
    axis.legend()
    axis.grid(axis="y", alpha=0.3)
    return figure


def _module_shares(document: ComparisonDocument):
    from matplotlib import pyplot as plt

    libraries = list(dict.fromkeys(p.library for p in document.profiles))
    phases = [phase for phase in ("prefill", "decode") if any(p.phase == phase for p in document.profiles)]
    figure, axes = plt.subplots(len(phases), len(libraries), figsize=(4.5 * len(libraries), 3.6 * len(phases)),
                                squeeze=False, sharey=True, layout="constrained")
    labels = CATEGORY_LABELS
    palette = plt.get_cmap("tab20")
    for row, phase in enumerate(phases):
        for col, library in enumerate(libraries):
            axis = axes[row][col]
            profiles = sorted((p for p in document.profiles if p.library == library and p.phase == phase),
                              key=lambda p: p.input_len)
            xs = [str(p.input_len) for p in profiles]
            bottom = [0.0] * len(profiles)
            for index, label in enumerate(labels):
                heights = [p.shares_pct.get(label, 0.0) for p in profiles]
                if any(heights):
                    axis.bar(xs, heights, bottom=bottom, label=label, color=palette(index % 20))
                    bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
            axis.set_title(f"{library} · {phase}")
            axis.set_xlabel("input length (tokens)")
            if col == 0:
                axis.set_ylabel("share of step time (%)")
    handles, names = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, names, loc="outside right center", fontsize=8)
    figure.suptitle("time share of each module against input length")
    return figure


def _datasets(datasets: Sequence[DatasetSpec]):
    from matplotlib import pyplot as plt

    from tuibench.core.workload import load_requests

    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.4), squeeze=False,
                                layout="constrained")
    for axis, dataset in zip(axes[0], datasets, strict=True):
        requests = load_requests(dataset, 1000 if dataset.kind == "random" else None, 0)
        for name, values in (("input", [r.input_tokens for r in requests if r.input_tokens]),
                             ("output", [r.output_tokens for r in requests if r.output_tokens])):
            if values:
                axis.hist(values, bins=_bins(values), alpha=0.6, label=f"{name} (mean {sum(values) / len(values):,.0f})")
        axis.set_title(f"{dataset.label} ({len(requests)} requests)")
        axis.set_xlabel("tokens")
        axis.set_ylabel("requests")
        axis.legend(fontsize=8)
    figure.suptitle("request length distributions")
    return figure


def _bins(values: Sequence[int]) -> int:
    return max(5, min(40, int(math.sqrt(len(values))) * 2))

"""The capacity figure of a workload searched under an SLO: each objective's latency against the probed rate, a
line per library, the objective's limit as a dashed line and each library's capacity as a dotted one; a filled
marker met every objective, a hollow one missed one. Drawn with matplotlib (Agg) by report/figures.py."""

from collections.abc import Sequence

from tuibench.core.capacity import Capacity
from tuibench.core.catalogue import LATENCY_OF, REQUEST_RATE


def capacity_figure(plt, capacities: Sequence[Capacity]):
    from matplotlib.ticker import FuncFormatter

    objectives = capacities[0].objectives
    figure, axes = plt.subplots(1, len(objectives), figsize=(5.2 * len(objectives), 3.8), squeeze=False)
    colours = {c.library: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(capacities)}
    for axis, objective in zip(axes[0], objectives, strict=True):
        for capacity in capacities:
            probes = sorted((p for p in capacity.probes if p.measured_ms.get(objective.label) is not None),
                            key=lambda p: p.rate_rps)
            if not probes:
                continue
            colour = colours[capacity.library]
            axis.plot([p.rate_rps for p in probes], [p.measured_ms[objective.label] for p in probes], color=colour,
                      label=capacity.library)
            for probe in probes:
                axis.scatter(probe.rate_rps, probe.measured_ms[objective.label], s=36, zorder=3, edgecolors=colour,
                             facecolors=colour if probe.met else "none")
            if capacity.capacity_rps is not None:
                axis.axvline(capacity.capacity_rps, color=colour, linestyle=":", linewidth=1)
        axis.axhline(objective.limit_ms, color="black", linestyle="--", linewidth=1, label="objective")
        axis.set_xscale("log", base=2)
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 4, not 2²
        axis.set_xlabel(REQUEST_RATE.axis)
        latency = LATENCY_OF[f"{objective.latency}_ms"]
        axis.set_title(f"{latency.short} {objective.quantile} ({latency.unit})")
        axis.grid(alpha=0.3)
    axes[0][0].legend(title="● met  ○ missed  ┆ capacity", fontsize=8, title_fontsize=8)
    figure.suptitle(f"{capacities[0].dataset}: capacity under the SLO, latency against the probed rate", y=1.03)
    return figure

"""One serving run over its own time: each request's TTFT and TPOT at its send, with the steady window shaded and
its warm-up and drain left outside it (core/steady.py). `tuibench runs show ID --figures DIR` writes it."""

from collections.abc import Iterable
from pathlib import Path

from tuibench.core.catalogue import LATENCY_OF, LATENCY_UNIT
from tuibench.core.metrics import SteadyState
from tuibench.core.records import RequestRecord
from tuibench.report.figures import pyplot, save_figure

STEADY_SHADE = "#2ca02c"  # the window's colour; the warm-up and drain stay unshaded
PLOTTED = ("ttft_ms", "tpot_ms")


def timeline_figure(records: Iterable[RequestRecord], steady: SteadyState | None, title: str):
    """The figure: a panel per latency against seconds since the first send; the steady window, where there is one,
    shaded from its first request's send to its last one's, and named with its warm-up and drain."""
    plt = pyplot()
    done = sorted((r for r in records if r.ok and r.scheduled_s is not None), key=lambda r: r.start_s)
    origin_s = done[0].start_s if done else 0.0
    figure, axes = plt.subplots(len(PLOTTED), 1, sharex=True, figsize=(8, 5))
    for ax, field in zip(axes, PLOTTED, strict=True):
        latency = LATENCY_OF[field]
        points = [(r.start_s - origin_s, value) for r in done if (value := getattr(r, field)) is not None]
        ax.scatter([x for x, _ in points], [y for _, y in points], s=6, label=latency.label)
        ax.set_ylabel(f"{latency.short} ({LATENCY_UNIT})")
        if steady is not None:
            ax.axvspan(steady.start_s - origin_s, steady.last_start_s - origin_s, color=STEADY_SHADE, alpha=0.15,
                       label=f"steady: warm-up {steady.warmup}, drain {steady.drain}")
        ax.legend(loc="upper left", fontsize="small")
    axes[-1].set_xlabel("seconds since the first request was sent")
    axes[0].set_title(title)
    return figure


def write_run_figures(records: Iterable[RequestRecord], steady: SteadyState | None, title: str, out_dir: Path,
                      run_id: int) -> list[Path]:
    return save_figure(timeline_figure(records, steady, title), out_dir, f"run-{run_id}-timeline")

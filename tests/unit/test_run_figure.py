"""A serving run's timeline figure (report/run_figure.py): each request's TTFT and TPOT at its send, the steady
window shaded over exactly the sends MSER-5 kept; none without a window."""

import random

from test_steady_state import DRAIN, RAMP, _records, plateau
from tuibench.core.aggregate import compute_metrics
from tuibench.report.run_figure import PLOTTED, timeline_figure


def test_the_shade_spans_the_sends_of_the_steady_window_and_the_panels_are_the_catalogues():
    records = _records(RAMP + plateau(1) + DRAIN)  # sent every 0.1 s from 0
    steady = compute_metrics(records).steady
    figure = timeline_figure(records, steady, "a run")
    for ax in figure.axes:
        (shade,) = ax.patches  # a Rectangle over the axes' height
        first, last = steady.warmup, len(records) - steady.drain - 1
        assert (shade.get_x(), shade.get_x() + shade.get_width()) == (first / 10.0, last / 10.0)  # their sends, s
        assert len(ax.collections[0].get_offsets()) == len(records)  # every request, once
    assert [ax.get_ylabel() for ax in figure.axes] == ["TTFT (ms)", "TPOT (ms)"] and PLOTTED == ("ttft_ms", "tpot_ms")
    figure.clf()


def test_a_run_without_a_steady_window_has_no_shade():
    records = _records(plateau(2, 30))  # too short to search
    assert compute_metrics(records).steady is None
    figure = timeline_figure(random.sample(records, len(records)), None, "short")
    assert all(not ax.patches for ax in figure.axes)

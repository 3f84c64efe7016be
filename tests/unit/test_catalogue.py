"""The catalogue names every figure and status once: each entry reads a real field, none is missing or twice."""

import typing

from tuibench.core.catalogue import BY_KEY, LATENCIES, METRICS, STATUS_STYLE, SWEEP_KEYS
from tuibench.core.side_by_side import SweepPoint
from tuibench.core.metrics import RunMetrics
from tuibench.core.plan import PlanStatus, StepStatus
from tuibench.core.reducer import Status


def test_every_status_a_run_step_or_plan_can_have_has_a_style():
    statuses = {*typing.get_args(Status), *typing.get_args(StepStatus), *typing.get_args(PlanStatus)}
    assert statuses - set(STATUS_STYLE) == set()  # partial among them: yellow, as it was not in History before
    assert STATUS_STYLE["partial"] == "yellow"


def test_every_latency_and_figure_reads_a_field_that_exists():
    assert {latency.field for latency in LATENCIES} <= set(RunMetrics.__struct_fields__)
    assert len(BY_KEY) == len(METRICS)  # no key twice
    assert set(SWEEP_KEYS) <= set(SweepPoint.__struct_fields__)
    assert [m.digits for m in (BY_KEY["failed"], BY_KEY["request_throughput_rps"], BY_KEY["ttft_p50_ms"])] == [0, 2, 1]

"""The CLI's progress without a terminal (a pipe, CI, a log): a plain line every few seconds, never silence."""

import io

from rich.console import Console

from tuibench.core import events as ev
from tuibench.core.records import RequestRecord
from tuibench.core.reducer import RunState
from tuibench.core.spec import DatasetSpec, RunSpec
from tuibench.report.progress import PLAIN_EVERY_S, ProgressView


def test_a_pipe_gets_a_progress_line_every_few_seconds():
    out = io.StringIO()
    now = [0.0]
    view = ProgressView(Console(file=out, width=100), clock=lambda: now[0])
    state = RunState()
    spec = RunSpec(dataset=DatasetSpec(kind="random", source="random"), num_requests=24)
    events = [ev.RunStarted(t_s=0.0, spec=spec, num_requests=24, pid=1, environment={})]
    for i in range(24):
        events.append(ev.RequestDone(t_s=0.5 * (i + 1), record=RequestRecord(
            index=i, input_tokens=8, output_tokens=4, target_output_tokens=4, start_s=0.0, ttft_ms=10.0, e2el_ms=40.0,
            itl_ms=[10.0] * 3)))
    with view:
        for event in events:
            now[0] = event.t_s
            state.apply(event)
            view(event, state)
    lines = [line for line in out.getvalue().splitlines() if "requests done" in line]
    assert len(lines) == int(12.0 // PLAIN_EVERY_S)  # 24 requests over 12 s: a line at 5 s and at 10 s
    assert lines[0] == "· 10 of 24 requests done, 8.0 output tok/s"

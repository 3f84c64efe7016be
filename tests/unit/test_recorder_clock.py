"""The run recorder on a virtual clock: the run's clock and the store's flush interval, pinned exactly."""

import inspect

from tuibench.core import events as ev
from tuibench.core.records import RequestRecord
from tuibench.core.spec import DatasetSpec, RunSpec
from tuibench.core.timing import PERF_COUNTER, VirtualClock
from tuibench.runner.recorder import FLUSH_EVERY_S, RunRecorder


SPEC = RunSpec(dataset=DatasetSpec(kind="builtin", source="short2short"))


class StoreSpy:
    """What the recorder writes, and when (on the test's clock)."""

    def __init__(self, clock: VirtualClock):
        self.clock, self.writes = clock, []

    def begin_run(self, spec):
        return 7

    def record_start(self, run_id, spec, environment):
        pass

    def add_records(self, run_id, requests, batches, telemetry):
        self.writes.append((self.clock.now_s(), [r.index for r in requests]))

    def finish_run(self, run_id, status, metrics, error=None, warnings=None):
        self.writes.append((self.clock.now_s(), status))


def done(index: int, t_s: float) -> ev.RequestDone:
    return ev.RequestDone(t_s=t_s, record=RequestRecord(index=index, input_tokens=1, output_tokens=1,
                                                        target_output_tokens=1, start_s=t_s, ttft_ms=1.0, e2el_ms=1.0))


def test_the_runs_clock_reads_zero_when_the_recorder_is_made_and_then_the_clocks_time_since():
    clock = VirtualClock(1000.0)
    recorder = RunRecorder(SPEC, clock=clock)
    assert recorder.origin == 1000.0  # the reading handed to the child as the run's zero
    assert recorder.clock_s() == 0.0
    clock.advance(0.25)
    assert recorder.clock_s() == 0.25
    clock.advance(2.5)
    assert recorder.clock_s() == 2.75


def test_records_reach_the_store_once_flush_every_s_has_passed_and_all_at_the_end():
    clock = VirtualClock(0.0)
    store = StoreSpy(clock)
    recorder = RunRecorder(SPEC, store=store, clock=clock)
    recorder(ev.RunStarted(t_s=0.0, spec=SPEC, num_requests=3, pid=1))
    clock.advance(0.5)
    recorder(done(0, recorder.clock_s()))
    clock.advance(FLUSH_EVERY_S - 0.5 - 1 / 1024)  # just short of FLUSH_EVERY_S since the recorder was made
    recorder(done(1, recorder.clock_s()))
    assert store.writes == []
    clock.advance(1 / 1024)  # exactly FLUSH_EVERY_S: the next event flushes what waits
    recorder(done(2, recorder.clock_s()))
    assert store.writes == [(FLUSH_EVERY_S, [0, 1, 2])]
    clock.advance(0.25)
    recorder(ev.RunFinished(t_s=recorder.clock_s()))  # the end flushes whatever is left, at once
    assert store.writes == [(FLUSH_EVERY_S, [0, 1, 2]), (FLUSH_EVERY_S + 0.25, []),
                            (FLUSH_EVERY_S + 0.25, "finished")]


def test_by_default_the_recorder_reads_perf_counter():
    # The child is handed `origin` as a perf_counter reading: the default clock must be that one.
    assert inspect.signature(RunRecorder).parameters["clock"].default is PERF_COUNTER

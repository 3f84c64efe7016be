"""Sends each event of a run to the reducer, the JSONL event log and the results store."""

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tuibench.core import events as ev
from tuibench.core.reducer import RunState
from tuibench.core.spec import RunSpec
from tuibench.core.store import ResultsStore
from tuibench.core.workload import RequestSpec
from tuibench.runner.supervisor import Tick, no_tick, run_in_child

FLUSH_EVERY_S = 1.0


class RunRecorder:
    """One run's sink. Store writes are batched (at most FLUSH_EVERY_S behind) and flushed at the end."""

    def __init__(self, spec: RunSpec, store: ResultsStore | None = None, events_path: Path | None = None,
                 observers: Sequence[Callable[[ev.Event, RunState], None]] = ()):
        self.state = RunState()
        self.store = store
        self.run_id = store.begin_run(spec) if store else None
        self.state.run_id = self.run_id
        self._events = open(events_path, "wb") if events_path else None
        self._observers = list(observers)
        self._pending: dict[type, list] = {ev.RequestDone: [], ev.BatchDone: [], ev.TelemetrySample: []}
        self._flushed_at = time.monotonic()

    def __call__(self, event: ev.Event) -> None:
        if self._events:
            ev.write_jsonl(self._events, event)
            self._events.flush()  # a killed parent still leaves every event it had
        self.state.apply(event)
        if self.store:
            self._record(event)
        for observer in self._observers:
            observer(event, self.state)

    def _record(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.store.set_environment(self.run_id, event.environment)
        elif isinstance(event, ev.ModuleTimings):  # a few per run, each the result of many seconds: kept at once
            self.store.add_module_profile(self.run_id, event.profile)
        elif type(event) in self._pending:
            self._pending[type(event)].append(event)
        if isinstance(event, ev.TERMINAL) or time.monotonic() - self._flushed_at >= FLUSH_EVERY_S:
            self.flush()
        if isinstance(event, ev.TERMINAL):
            self.store.finish_run(self.run_id, self.state.status, self.state.metrics(), self.state.error)

    def flush(self) -> None:
        if self.store:
            pending = self._pending
            self.store.add_records(
                self.run_id,
                requests=[e.record for e in pending[ev.RequestDone]],
                batches=[e.record for e in pending[ev.BatchDone]],
                telemetry=pending[ev.TelemetrySample],
            )
            for events in pending.values():
                events.clear()
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        self.flush()
        if self._events:
            self._events.close()


def execute(spec: RunSpec, requests: Sequence[RequestSpec], store: ResultsStore | None = None,
            events_path: Path | None = None,
            observers: Sequence[Callable[[ev.Event, RunState], None]] = (),
            tick: Tick = no_tick, cancel: Callable[[], bool] = lambda: False,
            output_path: Path | None = None) -> RunRecorder:
    """Runs `spec` in a child process, recording everything; returns the recorder with the final state."""
    recorder = RunRecorder(spec, store, events_path, observers)
    try:
        run_in_child(spec, requests, recorder, tick, cancel, str(output_path) if output_path else None)
    finally:
        recorder.close()
    return recorder

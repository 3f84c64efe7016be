"""Sends each event of a run to the reducer, the JSONL event log and the results store."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from tuibench.core import events as ev
from tuibench.core.reducer import RunState
from tuibench.core.spec import RunSpec
from tuibench.core.store import ResultsStore
from tuibench.core.timing import PERF_COUNTER, Clock

FLUSH_EVERY_S = 1.0

Observer = Callable[[ev.Event, RunState], None]


class RunRecorder:
    """One run's sink, and its clock. Store writes are batched (at most FLUSH_EVERY_S behind) and flushed at the end.

    The run's clock reads 0 when the recorder is made: what the parent stamps before the child exists (a
    managed server starting) and what the child stamps share one time axis. `state` is reduced here and only
    here, under `lock` when another thread reads it. `clock` is read for the run's clock and the flush interval:
    the real one (perf_counter, whose `origin` reading the child is handed), or a test's.
    """

    def __init__(self, spec: RunSpec, store: ResultsStore | None = None, events_path: Path | None = None,
                 observers: Sequence[Observer] = (), state: RunState | None = None,
                 lock: AbstractContextManager | None = None, clock: Clock = PERF_COUNTER):
        self._now_s = clock.now_s
        self.origin = self._now_s()
        self.state = state if state is not None else RunState()
        self.store = store
        self.run_id = store.begin_run(spec) if store else None
        self.state.run_id = self.run_id
        self._lock = lock or nullcontext()
        self._events = open(events_path, "wb") if events_path else None
        self._observers = list(observers)
        self._pending: dict[type, list] = {ev.RequestDone: [], ev.BatchDone: [], ev.TelemetrySample: []}
        self._flushed_at = self._now_s()

    def clock_s(self) -> float:
        return self._now_s() - self.origin

    def __call__(self, event: ev.Event) -> None:
        if self._events:
            ev.write_jsonl(self._events, event)
            self._events.flush()  # a killed parent still leaves every event it had
        with self._lock:
            self.state.apply(event)
        if self.store:
            self._record(event)
        for observer in self._observers:
            observer(event, self.state)

    def _record(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.store.record_start(self.run_id, event.spec, event.environment)
        elif isinstance(event, ev.ModuleTimings):  # a few per run, each the result of many seconds: kept at once
            self.store.add_module_profile(self.run_id, event.profile)
        elif type(event) in self._pending:
            self._pending[type(event)].append(event)
        if isinstance(event, ev.TERMINAL) or self._now_s() - self._flushed_at >= FLUSH_EVERY_S:
            self.flush()
        if isinstance(event, ev.TERMINAL):
            with self._lock:
                metrics, warnings = self.state.metrics(), self.state.warnings()
            self.store.finish_run(self.run_id, self.state.status, metrics, self.state.error, warnings)

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
        self._flushed_at = self._now_s()

    def close(self) -> None:
        self.flush()
        if self._events:
            self._events.close()

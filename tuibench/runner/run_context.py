"""The run's context in the child: what its scenario and engine run with (core.context.Context is its shape)."""

import time
from collections.abc import Callable, Sequence

from tuibench.core import events as ev
from tuibench.core.module_profile import ModuleProfile
from tuibench.core.records import BatchRecord, RequestRecord
from tuibench.core.spec import RunSpec
from tuibench.core.workload import RequestSpec
from tuibench.models.resolve import ModelRef


class RunContext:
    """Handed to a scenario in the child: the run's inputs, its clock, and the event sink."""

    def __init__(self, spec: RunSpec, requests: Sequence[RequestSpec], model: ModelRef,
                 emit: Callable[[ev.Event], None], clock_origin: float | None = None):
        self.spec = spec
        self.requests = requests
        self.model = model
        self._emit = emit
        # perf_counter is CLOCK_MONOTONIC on Linux, one clock for every process: the parent hands its origin
        # over, so what it stamps (a server's log lines) lines up with what we stamp.
        self._origin = time.perf_counter() if clock_origin is None else clock_origin
        self.cluster = None  # the run's Ray cluster (a ClusterSession), with --ray-address
        self.server_metrics_url: str | None = None  # serving: the server's Prometheus /metrics, when it has one

    def clock_s(self, perf_counter_s: float | None = None) -> float:
        """Seconds on the run's clock for a perf_counter reading (now, by default)."""
        return (time.perf_counter() if perf_counter_s is None else perf_counter_s) - self._origin

    def emit(self, event: ev.Event) -> None:
        self._emit(event)

    def phase(self, name: ev.PhaseName, detail: str = "") -> None:
        self._emit(ev.Phase(t_s=self.clock_s(), name=name, detail=detail))

    def log(self, message: str, level: str = "info") -> None:
        self._emit(ev.Log(t_s=self.clock_s(), level=level, message=message))

    def progress(self, phase: str, done: int, total: int) -> None:
        self._emit(ev.Progress(t_s=self.clock_s(), phase=phase, done=done, total=total))

    def request_done(self, record: RequestRecord) -> None:
        # Offline, tuibench hands the library its prompts: a library that counts other lengths than planned means
        # tuibench built the workload wrong, and no number of it may stand. (Serving drift is the server's: shown.)
        counted = record.counted_input_tokens
        if self.spec.scenario == "offline" and counted is not None and counted != record.input_tokens:
            raise RuntimeError(f"request {record.index}: {self.spec.library} was handed {counted} prompt tokens, "
                               f"{record.input_tokens} planned")
        self._emit(ev.RequestDone(t_s=self.clock_s(), record=record))

    def batch_done(self, record: BatchRecord) -> None:
        self._emit(ev.BatchDone(t_s=self.clock_s(), record=record))

    def module_timings(self, profile: ModuleProfile) -> None:
        self._emit(ev.ModuleTimings(t_s=self.clock_s(), profile=profile))

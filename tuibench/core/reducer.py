"""One reducer turns a run's event stream into its state, and a plan's into its steps' states; the CLI and
the app both use it."""

import threading
from collections import deque
from typing import Literal

import msgspec

from tuibench.core import events as ev
from tuibench.core.aggregate import RunAggregate
from tuibench.core.metrics import ColdStart, RunMetrics, request_end_s
from tuibench.core.module_profile import ModuleProfile
from tuibench.core.capacity import Capacity, Probe
from tuibench.core.plan import (
    Plan, PlanEnded, PlanEvent, PlanStarted, PlanStatus, PlanStep, ProbeStarted, StepEnded, StepProbed, StepStarted,
    StepStatus, plan_status,
)
from tuibench.core.sample_window import TelemetryWindow
from tuibench.core.spec import RunSpec, gpus_used
from tuibench.core.timeline import Timeline
from tuibench.core.validity import RunWarning, run_warnings

# partial: the run ended, but some requests failed (a server that died mid-run, timeouts, HTTP errors).
Status = Literal["pending", "running", "finished", "partial", "failed", "interrupted"]
_STATUS_OF_FAILURE: dict[str, Status] = {"interrupted": "interrupted"}


class RunState:
    """Everything known about one run so far. Feed it events with `apply`; read `metrics()` any time.

    Its memory does not grow with the run: requests are folded into a RunAggregate as they end, the charts'
    points and the telemetry are thinned (core/timeline.py, core/sample_window.py), the log is a ring. Each
    request itself is in the results store.
    """

    def __init__(self, log_lines: int = 500, recent_telemetry: int = 1024):
        self.status: Status = "pending"
        self.spec: RunSpec | None = None
        self.environment: dict[str, object] = {}
        self.num_requests = 0
        self.phase: str | None = None
        self.phase_started_s: dict[str, float] = {}
        self.progress: ev.Progress | None = None
        self.requests_done = 0  # requests that ended, failed or not
        self.requests_ok = 0
        self.first_error: str | None = None  # the first failed request's
        self.output_tokens_done = 0  # of those that succeeded, trimmed or not: the live rate's
        self.aggregate = RunAggregate()  # made again at RunStarted, with the spec's SLO and trim
        self.timeline = Timeline()
        self._telemetry = TelemetryWindow()
        self.recent_telemetry: deque[ev.TelemetrySample] = deque(maxlen=recent_telemetry)  # Live's sparklines
        self.profiles: list[ModuleProfile] = []  # per-module timing trees, one per (length, phase)
        self.logs: deque[ev.Log] = deque(maxlen=log_lines)
        self.log_count = 0  # every Log ever applied: a viewer that has shown n of them shows the rest
        self.run_id: int | None = None  # set by whoever stores the run
        self.error: str | None = None
        self.failure_kind: str | None = None
        self.last_t_s = 0.0
        self._metrics: RunMetrics | None = None
        # Energy per token reads the GPU energy counters up to the first sample after the last request's
        # end: later samples change nothing, so they leave the cached metrics alone.
        self._last_end_s = float("-inf")
        self._server_started: ev.ServerStarted | None = None  # a managed server launched for this run
        self._first_request_ms: float | None = None
        self._energy_past_end: set[str] = set()

    @property
    def ended(self) -> bool:
        return self.status in ("finished", "partial", "failed", "interrupted")

    @property
    def telemetry(self) -> list[ev.TelemetrySample]:
        """The run's samples in time order, thinned past TelemetryWindow's capacity per source."""
        return self._telemetry.samples()

    @property
    def telemetry_count(self) -> int:
        return self._telemetry.count

    def apply(self, event: ev.Event) -> None:
        self.last_t_s = max(self.last_t_s, event.t_s)
        match event:
            case ev.RunStarted():
                self.status = "running"
                self.spec = event.spec
                self.environment = dict(event.environment)
                self.num_requests = event.num_requests
                serving = event.spec.serving if event.spec.scenario == "serving" else None
                self.aggregate = RunAggregate(slo=serving.slo if serving else None, trim=serving.trim if serving else 0,
                                              gpus=gpus_used(event.spec, self.environment))
            case ev.Phase():
                self.phase = event.name
                self.phase_started_s[event.name] = event.t_s
            case ev.Progress():
                self.progress = event
            case ev.RequestDone():
                record = event.record
                self.requests_done += 1
                self.requests_ok += record.ok
                self.first_error = self.first_error or record.error
                self.output_tokens_done += record.output_tokens if record.ok else 0
                self.aggregate.add(record)
                self.timeline.add(record)
                self._metrics = None
                if record.ok and (end_s := request_end_s(record)) > self._last_end_s:
                    self._last_end_s = end_s
                    self._energy_past_end.clear()
            case ev.BatchDone():
                self.aggregate.add_batch(event.record)
                self._metrics = None
            case ev.TelemetrySample():
                self._telemetry.add(event)
                self.recent_telemetry.append(event)
                if event.source.startswith("server"):  # the server's own view is part of the metrics
                    self._metrics = None
                if self.requests_done and event.source.startswith("gpu") and event.values.get("energy_j") is not None:
                    if event.t_s <= self._last_end_s or event.source not in self._energy_past_end:
                        self._metrics = None
                    if event.t_s > self._last_end_s:
                        self._energy_past_end.add(event.source)
            case ev.ServerStarted():
                self._server_started = event
                self._metrics = None
            case ev.FirstRequest():
                self._first_request_ms = event.ttft_ms
                self._metrics = None
            case ev.ModuleTimings():
                self.profiles.append(event.profile)
            case ev.Log():
                self.logs.append(event)
                self.log_count += 1
            case ev.RunFinished():
                failed = self.requests_done - self.requests_ok
                if failed and not self.requests_ok:  # it ran to its end, and measured nothing
                    self.status = "failed"
                    self.error = f"none of its {failed} requests succeeded; the first: {self.first_error}"
                else:
                    self.status = "partial" if failed else "finished"
            case ev.RunFailed():
                self.status = _STATUS_OF_FAILURE.get(event.kind, "failed")
                self.failure_kind = event.kind
                self.error = event.error

    def live_output_tok_s(self) -> float | None:
        """Output tokens per second so far, the one figure the CLI's progress and the app's Live show: the finished
        requests' output tokens over the time since the first request was handed over, up to the latest event.
        Once the run has ended, exactly the run's output throughput."""
        if self.ended:
            return self.metrics().output_throughput_tok_s
        if not self.requests_ok:
            return None
        elapsed_s = self.last_t_s - self.timeline.origin_s
        return self.output_tokens_done / elapsed_s if elapsed_s > 0 else None

    def warnings(self) -> list[RunWarning]:
        """What may make this run's numbers untrustworthy, as known so far (stored when it ends)."""
        return run_warnings(self.spec, self.environment, self.metrics() if self.requests_done else None,
                            self.aggregate.window_s, self.telemetry)

    def metrics(self) -> RunMetrics:
        if self._metrics is None:
            metrics = self.aggregate.metrics(self.telemetry)
            if (started := self._server_started) is not None:
                first_s = None if self._first_request_ms is None else self._first_request_ms / 1e3
                metrics = msgspec.structs.replace(metrics, cold_start=ColdStart(
                    process_start_s=started.process_start_s, load_s=started.load_s, first_request_s=first_s))
            self._metrics = metrics
        return self._metrics


class StepState:
    """One step of a plan: where it stands, and its run's state once it runs."""

    def __init__(self, step: PlanStep):
        self.step = step
        self.status: StepStatus = "skipped" if step.skip else "pending"
        self.reason = step.skip
        self.run_id: int | None = None
        self.run = RunState()  # a capacity step: its latest probe's
        self.probes: list[Probe] = []  # a capacity step's, as they end
        self.capacity: Capacity | None = None  # and its outcome


class PlanState:
    """Everything known about one plan so far: its steps, each with its RunState.

    Plan events move the steps along; a run event goes to the RunState of the step that is running.
    The run service writes it from its own thread while the app reads it: both hold `lock`.
    """

    def __init__(self):
        self.lock = threading.RLock()
        self.plan_id: int | None = None
        self.plan: Plan | None = None
        self.steps: list[StepState] = []
        self.current: StepState | None = None
        self.status: PlanStatus | Literal["pending"] = "pending"

    @classmethod
    def of_run(cls, spec: RunSpec | None, run: RunState | None = None) -> "PlanState":
        """A plan of one step: a single run shown as plans are (a stored run, a replay). Running until `run` ends."""
        state = cls()
        if spec is not None:
            step = StepState(PlanStep(index=1, spec=spec))
            step.run = run or RunState()
            step.run_id = step.run.run_id
            state.steps = [step]
            if step.run.ended:
                step.status = step.run.status
                state.status = plan_status([step.status])
            else:
                step.status, state.current, state.status = "running", step, "running"
        return state

    @property
    def ended(self) -> bool:
        return self.status not in ("pending", "running")

    @property
    def run(self) -> RunState:
        """The run being shown: the running step's, else the last step that ran, else an empty one."""
        if self.current is not None:
            return self.current.run
        ran = [s for s in self.steps if s.run_id is not None or s.run.spec is not None]
        return ran[-1].run if ran else _EMPTY_RUN

    def apply(self, event: "ev.Event | PlanEvent") -> None:
        match event:
            case PlanStarted():
                self.plan_id, self.plan, self.status = event.plan_id, event.plan, "running"
                self.steps = [StepState(step) for step in event.plan.steps]
            case StepStarted():
                self.current = self.steps[event.index - 1]
                self.current.status, self.current.run_id = "running", event.run_id
                self.current.run.run_id = event.run_id
            case ProbeStarted():
                self.steps[event.index - 1].run = RunState()
            case StepProbed():
                self.steps[event.index - 1].probes.append(event.probe)
            case StepEnded():
                step = self.steps[event.index - 1]
                step.status, step.reason = event.status, event.reason
                step.run_id = event.run_id if event.run_id is not None else step.run_id
                step.capacity = event.capacity
            case PlanEnded():
                self.status = event.status
                self.current = None
            case _ if self.current is not None:
                self.current.run.apply(event)


_EMPTY_RUN = RunState()

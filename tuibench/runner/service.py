"""The run service: runs a plan step by step, for the CLI and the app alike.

For each step it begins the run in the store, starts (or reuses) the library's managed server, loads the
step's requests, runs the spec in a child process and records every event: one reducer per run (the
step's RunState in the PlanState), the store, the event log. A failed step is recorded and the plan
goes on; an interrupted one (Ctrl-C, the app's cancel, even while a server starts) stops the plan, and
the steps left are stored as not run. The front ends only build plans and watch the events.
"""

import time
import traceback
from collections.abc import Callable
from pathlib import Path

import msgspec

from tuibench.core import events as ev
from tuibench.core.capacity import Capacity, Probe
from tuibench.core.errors import UserError
from tuibench.core.plan import (
    Plan, PlanEnded, PlanEvent, PlanStarted, PlanStep, ProbeStarted, StepEnded, StepProbed, StepStarted, StepStatus,
    plan_status,
)
from tuibench.core.reducer import PlanState, RunState
from tuibench.core.spec import RunSpec
from tuibench.core.store import ResultsStore
from tuibench.runner.capacity_search import capacity_status, search_capacity
from tuibench.runner.recorder import RunRecorder
from tuibench.runner.server_pool import ServerFailed, ServerPool
from tuibench.runner.supervisor import Cancelled, no_tick, run_in_child

PlanObserver = Callable[[ev.Event | PlanEvent, PlanState], None]


def run_plan(plan: Plan, store: ResultsStore, *, state: PlanState | None = None,
             observer: PlanObserver = lambda event, state: None, cancel: Callable[[], bool] = lambda: False,
             events_path: Path | None = None, output_dir: Path | None = None, port: int | None = None) -> PlanState:
    """Runs every step of `plan`, storing each run under one plan id; returns the plan's final state.

    `state` (a fresh PlanState by default) is reduced here as events arrive: pass one to read it from
    another thread under its lock. `observer(event, state)` sees every plan and run event after it is
    reduced. `cancel()` turning true stops the plan as Ctrl-C does. With `events_path`, each run's events
    go to that JSONL file (numbered per step when the plan has several, per probe of a capacity step); with
    `output_dir`, each child's stdout and stderr go to a log file there instead of the terminal. `port`: the
    managed servers' port.
    """
    state = state if state is not None else PlanState()
    steps = _Steps(plan, store, state, observer, cancel, events_path, output_dir)
    runnable = plan.runnable
    stopped: str | None = None  # why the steps left will not run
    outcome = None  # set only when something outside every step broke the plan off
    try:
        with ServerPool(port) as servers:
            for step in plan.steps:
                if step.skip is not None:
                    steps.announce(StepEnded(index=step.index, status="skipped", reason=step.skip))  # stored already
                    continue
                if stopped:
                    store.set_step(steps.plan_id, step.index, "not run", reason=stopped)
                    steps.announce(StepEnded(index=step.index, status="not run", reason=stopped))
                    continue
                status, reason = (steps.run if step.search is None else steps.search)(step, servers)
                if status == "interrupted":
                    stopped = f"the plan stopped at step {step.index}: {reason}"
                later = [s for s in runnable if s.index > step.index]
                servers.release_unless(None if stopped or not later else later[0].spec)
    except BaseException as exc:
        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        raise
    finally:
        status = outcome or plan_status([s.status for s in state.steps])
        store.finish_plan(steps.plan_id, status)
        steps.announce(PlanEnded(status=status))
    return state


class _Steps:
    """A plan's steps as they run: each run recorded, stored under its step and announced to the plan's state."""

    def __init__(self, plan: Plan, store: ResultsStore, state: PlanState, observer: PlanObserver,
                 cancel: Callable[[], bool], events_path: Path | None, output_dir: Path | None):
        self.store, self.state, self.observer, self.cancel = store, state, observer, cancel
        self.events_path, self.output_dir = events_path, output_dir
        self.numbered = len(plan.runnable) > 1
        self.plan_id = store.begin_plan(plan)
        self.announce(PlanStarted(plan_id=self.plan_id, plan=plan))

    def announce(self, event: PlanEvent) -> None:
        with self.state.lock:
            self.state.apply(event)
        self.observer(event, self.state)

    def run(self, step: PlanStep, servers: ServerPool) -> tuple[StepStatus, str | None]:
        """A step of one run; its outcome is the run's."""
        run = self._run_once(step, step.spec, servers)
        self.store.set_step(self.plan_id, step.index, run.status, reason=run.error)
        self.announce(StepEnded(index=step.index, status=run.status, run_id=run.run_id, reason=run.error))
        return run.status, run.error

    def search(self, step: PlanStep, servers: ServerPool) -> tuple[StepStatus, str | None]:
        """A capacity step: a run per probe, on the one server the pool keeps for them (only the rate and the request
        count change between probes); its outcome stored after each probe."""
        probes = 0

        def probe(spec: RunSpec) -> RunState:
            nonlocal probes
            probes += 1
            if probes > 1:  # the step's state shows its latest probe's run
                self.announce(ProbeStarted(index=step.index))
            return self._run_once(step, spec, servers, probe=probes)

        def probed(found: Probe, so_far: Capacity) -> None:
            self.store.set_step(self.plan_id, step.index, "running", capacity=so_far)
            self.announce(StepProbed(index=step.index, probe=found))

        capacity = search_capacity(step, probe, probed)
        status = capacity_status(capacity)
        self.store.set_step(self.plan_id, step.index, status, reason=capacity.skipped, capacity=capacity)
        self.announce(StepEnded(index=step.index, status=status, reason=capacity.skipped, capacity=capacity))
        return status, capacity.skipped

    def _run_once(self, step: PlanStep, spec: RunSpec, servers: ServerPool, probe: int | None = None) -> RunState:
        events = self.events_path
        if events is not None and (self.numbered or probe is not None):
            events = _numbered(events, step.index if probe is None else f"{step.index}.{probe}")
        recorder = RunRecorder(spec, self.store, events, state=self.state.steps[step.index - 1].run,
                               lock=self.state.lock, observers=[lambda event, run: self.observer(event, self.state)])
        # A capacity step's runs are its probes': they are listed with it, none is its one run.
        self.store.set_step(self.plan_id, step.index, "running", recorder.run_id if probe is None else None)
        self.store.add_step_run(self.plan_id, step.index, recorder.run_id)
        self.announce(StepStarted(index=step.index, run_id=recorder.run_id))
        try:
            _run_step(msgspec.structs.replace(step, spec=spec), recorder, servers, self.cancel, self.output_dir)
        finally:
            recorder.close()
        return recorder.state


def _run_step(step: PlanStep, recorder: RunRecorder, servers: ServerPool, cancel: Callable[[], bool],
              output_dir: Path | None) -> None:
    """One step's run, from its server to its child's last event. Every way it can end ends in one terminal event."""
    from tuibench.core.workload import load_requests

    spec = step.spec
    clock = recorder.clock_s
    where = ""  # what was going on, for a stop outside the child
    try:
        tick = no_tick
        if spec.scenario == "serving":
            where = f" while the {spec.library} server was starting" if not spec.serving.endpoint else \
                f" while waiting for {spec.serving.endpoint}"
            spec, tick = servers.endpoint(spec, recorder, clock, cancel)
            where = ""
        requests = [] if spec.scenario == "profile" else load_requests(spec.dataset, spec.num_requests, spec.seed)
        output = None
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
            output = output_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{recorder.run_id}-{spec.library}.log"
            recorder(ev.Log(t_s=clock(), message=f"engine output: {output}"))
        run_in_child(spec, requests, recorder, tick, cancel, str(output) if output else None, origin=recorder.origin)
    except Cancelled:
        _fail(recorder, "interrupted", f"cancelled in the app{where}")
    except KeyboardInterrupt:
        _fail(recorder, "interrupted", f"interrupted by the user (Ctrl-C){where}")
    except UserError as exc:
        _fail(recorder, "input", str(exc))
    except ServerFailed as exc:
        _fail(recorder, "error", str(exc))
    except Exception as exc:  # noqa: BLE001 - a step's failure is recorded with its traceback; the plan goes on
        recorder(ev.Log(t_s=clock(), level="error", message=traceback.format_exc()))
        _fail(recorder, "error", f"{type(exc).__name__}: {exc}")


def _fail(recorder: RunRecorder, kind: ev.FailureKind, error: str) -> None:
    if not recorder.state.ended:  # the child may have ended the run already
        recorder(ev.RunFailed(t_s=recorder.clock_s(), kind=kind, error=error))


def _numbered(path: Path, index: int | str) -> Path:
    return path.with_name(f"{path.stem}.{index}{path.suffix}")

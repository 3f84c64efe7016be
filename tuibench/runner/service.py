"""The run service: runs a plan step by step, for the CLI and the app alike.

For each step it begins the run in the store, starts (or reuses) the library's managed server, loads the
step's requests, runs the spec in a child process and records every event: one reducer per run (the
step's RunState in the PlanState), the store, the event log. A failed step is recorded and the plan
goes on; an interrupted one (Ctrl-C, the app's cancel, even while a server starts) stops the plan, and
the steps left are stored as not run. The front ends only build plans and watch the events.
"""

import contextlib
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import msgspec

from tuibench.core import events as ev
from tuibench.core.capacity import Capacity, Probe
from tuibench.core.errors import UserError
from tuibench.core.plan import (
    Plan, PlanEnded, PlanEvent, PlanStarted, PlanStep, StepEnded, StepProbed, StepStarted, plan_status,
)
from tuibench.core.reducer import PlanState, RunState
from tuibench.core.spec import RunSpec
from tuibench.runner.capacity import capacity_status, search_capacity
from tuibench.core.store import ResultsStore
from tuibench.runner.recorder import RunRecorder
from tuibench.runner.serving import ServerFailed, ServerPool
from tuibench.runner.supervisor import Cancelled, no_tick, run_in_child

PlanObserver = Callable[[ev.Event | PlanEvent, PlanState], None]


def run_plan(plan: Plan, store: ResultsStore, *, state: PlanState | None = None,
             observer: PlanObserver = lambda event, state: None, cancel: Callable[[], bool] = lambda: False,
             events_path: Path | None = None, output_dir: Path | None = None, port: int | None = None,
             servers: ServerPool | None = None) -> PlanState:
    """Runs every step of `plan`, storing each run under one plan id; returns the plan's final state.

    `state` (a fresh PlanState by default) is reduced here as events arrive: pass one to read it from
    another thread under its lock. `observer(event, state)` sees every plan and run event after it is
    reduced. `cancel()` turning true stops the plan as Ctrl-C does. With `events_path`, each run's events
    go to that JSONL file (numbered per step when the plan has several); with `output_dir`, each child's
    stdout and stderr go to a log file there instead of the terminal. `port`: the managed servers' port.
    `servers`: a pool the caller owns and keeps across plans (a capacity search's probes share one server); by
    default the plan has its own, stopped when it ends.
    """
    state = state if state is not None else PlanState()

    def announce(event: PlanEvent) -> None:
        with state.lock:
            state.apply(event)
        observer(event, state)

    plan_id = store.begin_plan(plan)
    announce(PlanStarted(plan_id=plan_id, plan=plan))
    runnable = plan.runnable
    stopped: str | None = None  # why the steps left will not run
    outcome = None  # set only when something outside every step broke the plan off
    owned = servers is None
    try:
        with ServerPool(port) if owned else contextlib.nullcontext(servers) as servers:
            for step in plan.steps:
                if step.skip is not None:
                    announce(StepEnded(index=step.index, status="skipped", reason=step.skip))  # stored as such already
                    continue
                if stopped:
                    store.set_step(plan_id, step.index, "not run", reason=stopped)
                    announce(StepEnded(index=step.index, status="not run", reason=stopped))
                    continue
                made = 0  # the runs this step has made: one, or a capacity step's probes

                def run_once(spec: RunSpec) -> RunState:
                    """One run of the step, recorded, stored under it and announced; its final state."""
                    nonlocal made
                    made += 1
                    step_state = state.steps[step.index - 1]
                    if made > 1:  # a capacity step's next probe: a run of its own
                        with state.lock:
                            step_state.run = RunState()
                    events = events_path
                    if events_path and (len(runnable) > 1 or step.search):
                        events = _numbered(events_path, f"{step.index}.{made}" if step.search else step.index)
                    recorder = RunRecorder(spec, store, events, state=step_state.run, lock=state.lock,
                                           observers=[lambda event, run: observer(event, state)])
                    store.set_step(plan_id, step.index, "running", None if step.search else recorder.run_id)
                    store.add_step_run(plan_id, step.index, recorder.run_id)
                    announce(StepStarted(index=step.index, run_id=recorder.run_id))
                    try:
                        _run_step(msgspec.structs.replace(step, spec=spec), recorder, servers, cancel, output_dir)
                    finally:
                        recorder.close()
                    return recorder.state

                if step.search is None:
                    run = run_once(step.spec)
                    status, reason = run.status, run.error
                    store.set_step(plan_id, step.index, status, reason=reason)
                    announce(StepEnded(index=step.index, status=status, run_id=run.run_id, reason=reason))
                else:
                    def probed(probe: Probe, so_far: Capacity) -> None:
                        store.set_step(plan_id, step.index, "running", capacity=so_far)
                        announce(StepProbed(index=step.index, probe=probe))

                    capacity = search_capacity(step, run_once, probed)
                    status, reason = capacity_status(capacity), capacity.skipped
                    store.set_step(plan_id, step.index, status, reason=reason, capacity=capacity)
                    announce(StepEnded(index=step.index, status=status, reason=reason, capacity=capacity))
                if status == "interrupted":
                    stopped = f"the plan stopped at step {step.index}: {reason}"
                later = [s for s in runnable if s.index > step.index]
                if later or stopped or owned:  # a caller's pool keeps its server for the caller's next plan
                    servers.release_unless(None if stopped or not later else later[0].spec)
    except BaseException as exc:
        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        raise
    finally:
        status = outcome or plan_status([s.status for s in state.steps])
        store.finish_plan(plan_id, status)
        announce(PlanEnded(status=status))
    return state


def _run_step(step: PlanStep, recorder: RunRecorder, servers: ServerPool, cancel: Callable[[], bool],
              output_dir: Path | None) -> None:
    """One step's run, from its server to its child's last event. Every way it can end ends in one terminal event."""
    from tuibench.core.workload import load_requests

    spec = step.spec
    clock = recorder.clock_s
    try:
        tick = no_tick
        if spec.scenario == "serving":
            spec, tick = servers.endpoint(spec, recorder, clock, cancel)
        requests = [] if spec.scenario == "profile" else load_requests(spec.dataset, spec.num_requests, spec.seed)
        output = None
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
            output = output_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{recorder.run_id}-{spec.library}.log"
            recorder(ev.Log(t_s=clock(), message=f"engine output: {output}"))
        run_in_child(spec, requests, recorder, tick, cancel, str(output) if output else None, origin=recorder.origin)
    except Cancelled:
        _fail(recorder, "interrupted", f"cancelled in the app while the {spec.library} server was starting")
    except KeyboardInterrupt:
        _fail(recorder, "interrupted", f"interrupted by the user (Ctrl-C) while the {spec.library} server was starting")
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

"""Where the app's events come from: a plan run by the run service, a recorded event log, or a stored run.

A session works in a background thread and writes one PlanState, under its lock, through the same
reducer the CLI uses; after each event it calls `notify(event)`, which the app turns into a thread-safe
message so the screens redraw. Cancelling stops the plan as Ctrl-C does, keeping what was measured.
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from tuibench.core import events as ev
from tuibench.core.metrics import request_end_s
from tuibench.core.plan import Plan, PlanEnded, StepEnded, plan_status
from tuibench.core.reducer import PlanState, RunState

Notify = Callable[[object], None]


class SessionFailed(Exception):
    """What broke a session outside any step (the store could not be opened, say): shown, never raised."""


class _Session:
    """A source of events in a background thread: started, cancellable, `done` once it delivered its last."""

    def __init__(self, state: PlanState, notify: Notify, name: str):
        self.state = state
        self._notify = notify
        self._cancel = threading.Event()
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _guarded(self) -> None:
        try:
            self._main()
        except Exception as exc:  # noqa: BLE001 - the app shows it; it must not die with the thread
            from tuibench.core.errors import UserError

            self._notify(SessionFailed(str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"))
        finally:
            self.done.set()

    def _main(self) -> None:
        raise NotImplementedError


class PlanSession(_Session):
    """A plan through the run service's process, as the CLI runs it; its events reduced here as they come (plan
    events move the steps, a run event goes to the running step's run), each child's output to a log file."""

    def __init__(self, plan: Plan, db_path: Path, state: PlanState, notify: Notify, service):
        super().__init__(state, notify, "tuibench-plan")
        self.plan = plan
        self._db_path = db_path
        self._service = service  # ui/run_service.RunService

    def cancel(self) -> None:
        super().cancel()
        self._service.cancel()

    def _main(self) -> None:
        def reduce(event) -> None:
            with self.state.lock:
                self.state.apply(event)
            self._notify(event)

        self._service.run(self.plan, self._db_path, reduce)


class EventLog:
    """A recorded event log (--events, or the app's replay), read twice: whole, once, to check it (a bad line is
    a UserError naming it, before anything is shown), then one event at a time as it is replayed, so that a
    day-long run's log is never all in memory."""

    def __init__(self, path: Path):
        self.path = path
        for _ in self:  # every line decoded once, so a bad one is said now
            pass

    def __iter__(self) -> Iterator[ev.Event]:
        from tuibench.core.errors import UserError

        try:
            with open(self.path, "rb") as stream:
                yield from ev.read_jsonl(stream)
        except OSError as exc:
            raise UserError(f"cannot read {self.path}: {exc.strerror}") from None
        except ValueError as exc:
            raise UserError(f"{self.path}: {exc}: pass an event log written by `tuibench run --events`") from None


class ReplaySession(_Session):
    """Plays a recorded event log back on its own clock (sped up by `speed`), for demos without a GPU."""

    def __init__(self, events: Iterable[ev.Event], state: PlanState, notify: Notify, speed: float = 1.0):
        super().__init__(state, notify, "tuibench-replay")
        self._events = events
        self._speed = max(speed, 1e-6)

    def _main(self) -> None:
        start = time.monotonic()
        for event in self._events:
            delay = event.t_s / self._speed - (time.monotonic() - start)
            if delay > 0 and self._cancel.wait(delay):
                event = ev.RunFailed(t_s=event.t_s, kind="interrupted", error="replay stopped")
            with self.state.lock:
                self.state.apply(event)
            self._notify(event)
            if isinstance(event, ev.TERMINAL):
                break
        run = self.state.run
        if run.ended:  # a log cut short ends nothing: the replay stays as far as the log went
            for event in (StepEnded(index=1, status=run.status), PlanEnded(status=plan_status([run.status]))):
                with self.state.lock:
                    self.state.apply(event)
                self._notify(event)


def replay_state(events: Iterable[ev.Event]) -> PlanState:
    """The PlanState a replay fills: one step, the recorded run's."""
    return PlanState.of_run(next((e.spec for e in events if isinstance(e, ev.RunStarted)), None))


def stored_run_state(store, run_id: int) -> PlanState:
    """A stored run rebuilt through the reducer, as a plan of one step, for the Live and Modules screens."""
    run = RunState()
    for event in stored_run_events(store, run_id):
        run.apply(event)
    run.run_id = run_id
    return PlanState.of_run(run.spec, run)


def stored_run_events(store, run_id: int) -> Iterator[ev.Event]:
    """A stored run as the events that would rebuild it, so the Live screen can show it like a run. Requests and
    samples stream from the store: a run of 100,000 requests is folded in, never held."""
    run = store.run_row(run_id)
    yield ev.RunStarted(t_s=0.0, spec=run.spec, num_requests=store.request_count(run_id), pid=0,
                        environment=run.environment)
    end = 0.0
    for record in store.requests(run_id):
        end = max(end, request_end_s(record))
        yield ev.RequestDone(t_s=record.start_s, record=record)
    for batch in store.batches(run_id):
        yield ev.BatchDone(t_s=batch.start_s, record=batch)
    yield from store.telemetry(run_id)
    for profile in store.module_profiles(run_id):
        yield ev.ModuleTimings(t_s=0.0, profile=profile)
    if run.status in ("finished", "partial"):
        yield ev.RunFinished(t_s=end)
    elif run.status in ("failed", "interrupted"):
        yield ev.RunFailed(t_s=end, kind="interrupted" if run.status == "interrupted" else "error",
                           error=run.error or run.status)

"""Where the app's events come from: a run started from the app, a recorded event log, or a stored run.

A run goes through the same runner as the CLI (a child process, the recorder, the store), driven from
a thread so the UI stays responsive; every event is handed to `deliver`, which the app makes a
thread-safe message post. Cancelling stops the child as Ctrl-C does, keeping what was measured.
"""

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tuibench.core import events as ev
from tuibench.core.spec import RunSpec

Deliver = Callable[[ev.Event], None]


class _Session:
    """A source of events in a background thread: started, cancellable, `done` once it delivered its last."""

    def __init__(self, deliver: Deliver, name: str):
        self._deliver = deliver
        self._cancel = threading.Event()
        self.done = threading.Event()
        self.run_id: int | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _main(self) -> None:
        raise NotImplementedError


class RunSession(_Session):
    """One run through the runner, as from the CLI."""

    def __init__(self, spec: RunSpec, requests, db_path: Path, deliver: Deliver):
        super().__init__(deliver, "tuibench-session")
        self.spec = spec
        self._requests = requests
        self._db_path = db_path

    def _main(self) -> None:
        from contextlib import ExitStack

        from tuibench.backends import require_backend
        from tuibench.core.errors import UserError
        from tuibench.core.paths import data_dir
        from tuibench.core.store import ResultsStore
        from tuibench.runner.recorder import execute
        from tuibench.runner.serving import ServerFailed, serving_endpoint
        from tuibench.runner.supervisor import no_tick

        def say(message: str) -> None:
            self._deliver(ev.Log(t_s=0.0, message=message))

        try:
            with ResultsStore.open(self._db_path) as store, ExitStack() as stack:
                spec, tick = self.spec, no_tick
                if spec.scenario == "serving":
                    backend = require_backend(spec.library, "serving")
                    spec, tick = stack.enter_context(serving_endpoint(spec, backend, None, say))
                logs = data_dir() / "logs"
                logs.mkdir(parents=True, exist_ok=True)
                output = logs / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{spec.library}.log"
                self._deliver(ev.Log(t_s=0.0, message=f"engine output: {output}"))

                def relay(event, state) -> None:
                    self.run_id = state.run_id  # known before the first event reaches the app
                    self._deliver(event)

                execute(spec, self._requests, store=store, tick=tick, cancel=self._cancel.is_set, observers=[relay],
                        output_path=output)
        except (UserError, ServerFailed) as exc:
            self._deliver(ev.RunFailed(t_s=0.0, kind="input", error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - the app shows it; it must not die with the thread
            self._deliver(ev.RunFailed(t_s=0.0, kind="error", error=f"{type(exc).__name__}: {exc}"))
        finally:
            self.done.set()


def read_events(path: Path) -> list[ev.Event]:
    """A recorded event log (--events, or the app's replay); a bad file is a UserError naming the line."""
    from tuibench.core.errors import UserError

    try:
        with open(path, "rb") as stream:
            return list(ev.read_jsonl(stream))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserError(f"{path}: {exc}: pass an event log written by `tuibench run --events`") from None


class ReplaySession(_Session):
    """Plays a recorded event log back on its own clock (sped up by `speed`), for demos without a GPU."""

    def __init__(self, events: list[ev.Event], deliver: Deliver, speed: float = 1.0):
        super().__init__(deliver, "tuibench-replay")
        self._events = events
        self._speed = max(speed, 1e-6)
        self.spec = next((e.spec for e in events if isinstance(e, ev.RunStarted)), None)

    def _main(self) -> None:
        start = time.monotonic()
        try:
            for event in self._events:
                delay = event.t_s / self._speed - (time.monotonic() - start)
                if delay > 0 and self._cancel.wait(delay):
                    self._deliver(ev.RunFailed(t_s=event.t_s, kind="interrupted", error="replay stopped"))
                    return
                self._deliver(event)
        finally:
            self.done.set()


def stored_run_events(store, run_id: int) -> Iterator[ev.Event]:
    """A stored run as the events that would rebuild it, so the Live screen can show it like a run."""
    stored = store.get_run(run_id)
    run = stored.run
    yield ev.RunStarted(t_s=0.0, spec=run.spec, num_requests=len(stored.requests), pid=0, environment=run.environment)
    for record in stored.requests:
        yield ev.RequestDone(t_s=record.start_s, record=record)
    for batch in stored.batches:
        yield ev.BatchDone(t_s=batch.start_s, record=batch)
    yield from store.telemetry(run_id)
    for profile in store.module_profiles(run_id):
        yield ev.ModuleTimings(t_s=0.0, profile=profile)
    end = max((r.start_s + (r.e2el_ms or 0) / 1000 for r in stored.requests), default=0.0)
    if run.status in ("finished", "partial"):
        yield ev.RunFinished(t_s=end)
    elif run.status in ("failed", "interrupted"):
        yield ev.RunFailed(t_s=end, kind="interrupted" if run.status == "interrupted" else "error",
                           error=run.error or run.status)

"""Live progress of a run in the terminal: a bar on a TTY, plain lines elsewhere (CI, pipes)."""

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tuibench.core import events as ev
from tuibench.core.catalogue import BY_KEY, REQUEST_RATE
from tuibench.core.plan import PlanEnded, PlanStarted, StepEnded, StepProbed, StepStarted
from tuibench.core.reducer import PlanState, RunState, StepState
from tuibench.core.units import fmt
from tuibench.report.tables import describe_spec

PLAIN_EVERY_S = 5.0  # without a terminal (a pipe, CI, a log): a plain progress line this often, not a bar
LIVE_RATE = BY_KEY["output_throughput_tok_s"]  # what the live rate is: output tokens per second so far


class ProgressView:
    """An observer for RunRecorder. Use as a context manager around the run."""

    def __init__(self, console: Console, clock=time.monotonic):
        self.console = console
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("requests"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console, transient=True,
        ) if console.is_terminal else None
        self._task = None
        self._clock = clock
        self._total: int | None = None
        self._said_at = clock()  # the last plain progress line (or the start)

    def __enter__(self) -> "ProgressView":
        if self._bar:
            self._bar.start()
            self._task = self._bar.add_task("starting", total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()

    def __call__(self, event: ev.Event, state: RunState) -> None:
        match event:
            case ev.RunStarted():
                self._say(f"run started (child pid {event.pid}): {event.num_requests} requests")
                self._update(state, total=event.num_requests)
            case ev.Phase():
                self._say(f"{event.name}" + (f": {event.detail}" if event.detail else ""))
                self._update(state, description=event.name)
            case ev.Log(level="warning" | "error" | "info") if not event.message.startswith("Traceback"):
                self._say(event.message, style="dim" if event.level == "info" else "yellow")
            case ev.RequestDone():
                self._update(state)

    def _plain(self, state: RunState) -> None:
        """A pipe's progress: requests done of planned, and the live output rate, every few seconds."""
        if not state.requests_done or self._clock() - self._said_at < PLAIN_EVERY_S:
            return
        self._said_at = self._clock()
        rate = state.live_output_tok_s()
        of = f" of {self._total}" if self._total else ""
        self._say(f"{state.requests_done}{of} {BY_KEY['completed'].label}"
                  + (f", {fmt(rate, LIVE_RATE.digits)} {LIVE_RATE.label}" if rate else ""))

    def _say(self, text: str, style: str = "dim") -> None:
        self.console.print(f"[{style}]· {text}[/]", highlight=False)

    def _update(self, state: RunState, **fields) -> None:
        self._total = fields.get("total", self._total)
        if self._bar is None:
            self._plain(state)
            return
        if self._task is None:
            return
        rate = state.live_output_tok_s()
        self._bar.update(self._task, completed=state.requests_done, rate=LIVE_RATE.text(rate) if rate else "",
                         **fields)


class PlanProgress:
    """The CLI's view of a plan: a line per step, each run's progress as above, and `on_step_end(step)` when a
    step ends (the command prints what it wants of it there)."""

    def __init__(self, console: Console, on_step_end: Callable[[StepState], None] = lambda step: None):
        self.console = console
        self._on_step_end = on_step_end
        self._view: ProgressView | None = None
        self._steps = 0

    def __call__(self, event, plan: PlanState) -> None:
        match event:
            case PlanStarted():
                self._steps = len(event.plan.runnable)
                skipped = len(event.plan.steps) - self._steps
                if len(event.plan.steps) > 1:
                    self.console.print(f"[bold]plan {event.plan_id}: {event.plan.label}[/] · {self._steps} step(s)"
                                       + (f", {skipped} skipped" if skipped else ""), highlight=False)
                for note in event.plan.notes:
                    self.console.print(f"[yellow]· {note}[/]", highlight=False)
            case StepStarted():
                step = plan.steps[event.index - 1]
                number = sum(s.run_id is not None for s in plan.steps)
                where = f"step {number}/{self._steps}: " if self._steps > 1 else ""
                what = describe_spec(step.step.spec) if step.step.search is None else \
                    f"{step.step.label}, probe {len(step.probes) + 1}"
                self.console.print(f"{where}{what}  → run {event.run_id}", style="bold", highlight=False)
                self._view = ProgressView(self.console).__enter__()
            case StepProbed():
                self._close_view()
                probe = event.probe
                why = "meets the SLO" if probe.met else "misses: " + "; ".join(probe.missed)
                library = plan.steps[event.index - 1].step.spec.library
                self.console.print(f"[bold]{library} @ {probe.rate_rps:.3g} {REQUEST_RATE.unit}[/] "
                                   f"(run {probe.run_id}): {why}", highlight=False)
            case StepEnded():
                self._close_view()
                step = plan.steps[event.index - 1]
                if event.status == "skipped":
                    self.console.print(f"[dim]· skipped {step.step.label}: {event.reason}[/]", highlight=False)
                elif event.status != "not run":
                    self._on_step_end(step)
            case PlanEnded():
                pass
            case _ if self._view is not None:
                self._view(event, plan.run)

    def _close_view(self) -> None:
        if self._view is not None:
            self._view.__exit__(None, None, None)
            self._view = None

"""The tuibench app: Setup → Live → Modules → Compare → History, Help on `?`. Keyboard first; 80×24 works.

The app owns at most one session at a time: a plan run by the run service, or a replay. The session's
thread reduces every event into `plan_state` (the same reducer as the CLI, once per event) and posts a
message; the screens read the state under its lock on their own timers, so a burst of events costs one
redraw, not one per event. When a plan of several runs ends, Compare opens on its runs.
"""

import importlib
from collections.abc import Iterable
from pathlib import Path

from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.message import Message

from tuibench.core import events as ev
from tuibench.core.paths import data_dir
from tuibench.core.plan import PlanEnded
from tuibench.core.reducer import PlanState, RunState
from tuibench.ui.run_lock import RunLock
from tuibench.ui.run_service import RunService
from tuibench.ui.screens.base import TuibenchScreen
from tuibench.ui.settings import Settings, load_settings, save_settings
from tuibench.ui.themes import DEFAULT_THEME, load_themes


QUIT_AGAIN_S = 5.0  # q mid-run: a second q within this quits


class StateMoved(Message):
    """The session reduced an event (or failed): posted from its thread."""

    def __init__(self, event: object, generation: int):
        super().__init__()
        self.event = event
        self.generation = generation


def _screen(module: str, name: str):
    """A mode's screen, imported when first shown: the app's first frame loads only the screen it shows."""

    def make():
        return getattr(importlib.import_module(f"tuibench.ui.screens.{module}"), name)()

    return make


class TuibenchApp(App):
    TITLE = "tuibench"
    CSS_PATH = "app.tcss"
    MODES = {
        "setup": _screen("setup", "SetupScreen"),
        "live": _screen("live", "LiveScreen"),
        "modules": _screen("modules", "ModulesScreen"),
        "compare": _screen("compare", "CompareScreen"),
        "history": _screen("history", "HistoryScreen"),
    }
    # The screens' keys are in the header (SUB_TITLE), not the footer: at 80 columns the footer then still holds
    # the screen's own keys, Help, Theme and Quit.
    SUB_TITLE = "1 Setup  2 Live  3 Modules  4 Compare  5 History"
    BINDINGS = [
        Binding("1", "switch_mode('setup')", "Setup", show=False),
        Binding("2", "switch_mode('live')", "Live", show=False),
        Binding("3", "switch_mode('modules')", "Modules", show=False),
        Binding("4", "switch_mode('compare')", "Compare", show=False),
        Binding("5", "switch_mode('history')", "History", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("t", "toggle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db_path: Path, replay: Iterable[ev.Event] | None = None, replay_speed: float = 1.0,
                 settings: Settings | None = None, plan=None, read_only: bool = False):
        super().__init__()
        # multiprocessing starts its resource tracker with our stderr's file descriptor, which Textual replaces
        # while the app runs: start it now, while stderr is still the terminal, or spawning a run fails.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        self.db_path = db_path
        self.settings = settings or load_settings()
        self._replay = replay
        self._replay_speed = replay_speed
        self._initial_plan = plan
        self.session = None
        self.plan_state = PlanState()
        self.generation = 0  # bumped per session, so a late message of an old one is dropped
        self.state_version = 0  # bumped per event: screens redraw only when it moved
        self.compare_runs: list[int] = []  # the runs Compare picks when compare_generation moves
        self.compare_generation = 0
        # Showing a room stored results (`tuibench web --read-only`): nothing is started or deleted.
        self.read_only = read_only
        self.run_lock = RunLock(data_dir() / "app-run.lock")
        # The run service, a process of its own started on first use: the app never imports an engine.
        self.run_service = RunService(log_path=data_dir() / "logs" / "app-run-service.log")
        self.library_rows: list | None = None  # what the run service said this machine has, once asked
        self._quit_asked_at = float("-inf")

    @property
    def state(self) -> RunState:
        """The run the screens show: the running step's, else the plan's last."""
        return self.plan_state.run

    def on_mount(self) -> None:
        for theme in load_themes():
            self.register_theme(theme)
        self.theme = self.settings.theme if self.settings.theme in self.available_themes else DEFAULT_THEME
        if self._replay is not None:
            from tuibench.ui.session import ReplaySession, replay_state

            self.switch_mode("live")
            self._start(replay_state(self._replay),
                        lambda state, notify: ReplaySession(self._replay, state, notify, self._replay_speed))
        elif self._initial_plan is not None:
            self.start_plan(self._initial_plan)
        else:
            self.switch_mode("setup")

    # -- sessions -----------------------------------------------------------------------------------

    def start_plan(self, plan) -> None:
        from tuibench.ui.session import PlanSession

        if self.refuses("start a run"):
            return
        if not self.running and not self.run_lock.acquire(plan.label):
            self.notify("a run is in progress (started from another tab, or another tuibench app): wait for it to "
                        "end", severity="warning", timeout=8)
            return
        if self._start(PlanState(),
                       lambda state, notify: PlanSession(plan, self.db_path, state, notify, self.run_service)):
            self.switch_mode("live")

    def refuses(self, what: str) -> bool:
        """In read-only mode: says so, and True."""
        if self.read_only:
            self.notify(f"read-only: this app shows stored results and does not {what}", severity="warning")
        return self.read_only

    def show_stored_run(self, run_id: int) -> None:
        """A stored run on Live (a profile on Modules), rebuilt from the store in a thread by the same reducer."""
        from tuibench.ui.screens.base import in_thread, read_store
        from tuibench.ui.session import stored_run_state

        def show(state: PlanState) -> None:
            if self.show_plan_state(state):
                spec = state.run.spec
                self.switch_mode("modules" if spec is not None and spec.scenario == "profile" else "live")

        in_thread(self, lambda: read_store(self.db_path, lambda store: stored_run_state(store, run_id), PlanState()),
                  show, group="stored-run")

    def show_plan_state(self, state: PlanState) -> bool:
        """A finished plan or stored run on the screens (no session): False while a session runs."""
        if self.running:
            self.notify("a run is in progress: cancel it first (c on the Live screen)", severity="warning")
            return False
        self.session = None
        self.generation += 1
        self.plan_state = state
        self.state_version += 1
        return True

    def _start(self, state: PlanState, make_session) -> bool:
        if self.running:
            self.notify("a run is in progress: cancel it first (c on the Live screen)", severity="warning")
            return False
        self.generation += 1
        self.plan_state = state
        self.state_version += 1
        generation = self.generation
        self.session = make_session(state, lambda event: self.post_message(StateMoved(event, generation))).start()
        return True

    def cancel_run(self) -> bool:
        if not self.running:
            return False
        self.session.cancel()
        return True

    @property
    def running(self) -> bool:
        return self.session is not None and not self.session.done.is_set()

    def on_state_moved(self, message: StateMoved) -> None:
        from tuibench.ui.session import SessionFailed

        if message.generation != self.generation:
            return
        self.state_version += 1
        event = message.event
        if isinstance(event, (*ev.TERMINAL, PlanEnded)) and isinstance(screen := self._shown(), TuibenchScreen):
            screen.maybe_redraw()
        if isinstance(event, (PlanEnded, SessionFailed)):
            self.run_lock.release()  # the next tab may start one
        if isinstance(event, SessionFailed):
            self.notify(f"could not run: {event}", severity="error", timeout=10)
        elif isinstance(event, ev.TERMINAL) and len(self.plan_state.steps) == 1 and not self._searching():
            state = self.state
            self.notify(f"run {state.status}" + (f": {state.error}" if state.error else ""),
                        severity="information" if state.status == "finished" else "warning")
        elif isinstance(event, PlanEnded) and (len(self.plan_state.steps) > 1 or self._searching()):
            with self.plan_state.lock:  # every run of every step: a capacity step's are its probes'
                runs = sorted({run for s in self.plan_state.steps
                               for run in (s.run_id, *(p.run_id for p in s.probes)) if run is not None})
            self.notify(f"plan {self.plan_state.plan_id} {event.status}: {len(runs)} run(s) side by side",
                        severity="information" if event.status == "finished" else "warning")
            self.open_compare(runs)

    def _shown(self):
        """The screen on show; None once the app is closing (the session's last events can come after its
        screens are gone: a run that ends as the user quits)."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    def _searching(self) -> bool:
        """The plan has a capacity step: its runs are probes, shown side by side once it ends."""
        return any(s.step.search is not None for s in self.plan_state.steps)

    def open_compare(self, run_ids: list[int]) -> None:
        """Compare, with these runs picked (a plan that ended, a plan opened from History)."""
        self.compare_runs = list(run_ids)
        self.compare_generation += 1
        self.switch_mode("compare")

    # -- actions ------------------------------------------------------------------------------------

    def action_help(self) -> None:
        from tuibench.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """q while a run goes asks once more: quitting stops the run (what it measured is kept)."""
        import time

        measuring = self.running and not self.state.ended  # not the moment after its end, while the session closes
        if measuring and time.monotonic() - self._quit_asked_at > QUIT_AGAIN_S:
            self._quit_asked_at = time.monotonic()
            self.notify(f"a run is in progress: q again within {QUIT_AGAIN_S:g} s quits, stopping it (what it "
                        "measured is kept)", severity="warning", timeout=QUIT_AGAIN_S)
            return
        self.exit()

    def action_toggle_theme(self) -> None:
        self.theme = "tuibench-light" if self.theme == "tuibench-dark" else "tuibench-dark"
        self.settings.theme = self.theme
        save_settings(self.settings)

    def on_unmount(self) -> None:
        if self.session is not None:
            self.session.cancel()
            self.session.join(10.0)
        self.run_service.close()

"""The tuibench app: Setup → Live → Modules → Compare → History, Help on `?`. Keyboard first; 80×24 works.

The app owns at most one run at a time (a RunSession or a ReplaySession). Every event it delivers is
posted as a message, folded into one RunState by the same reducer the CLI uses, and the screens
read that state on their own timers, so a burst of events costs one redraw, not one per event.
"""

import importlib
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.message import Message

from tuibench.core import events as ev
from tuibench.core.reducer import RunState
from tuibench.ui.settings import Settings, load_settings, save_settings
from tuibench.ui.themes import DEFAULT_THEME, load_themes


class RunEvent(Message):
    """One event of the current run, posted from the session's thread."""

    def __init__(self, event: ev.Event, generation: int):
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
    BINDINGS = [
        Binding("1", "switch_mode('setup')", "Setup"),
        Binding("2", "switch_mode('live')", "Live"),
        Binding("3", "switch_mode('modules')", "Modules"),
        Binding("4", "switch_mode('compare')", "Compare"),
        Binding("5", "switch_mode('history')", "History"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("t", "toggle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db_path: Path, theme: str | None = None, replay: list[ev.Event] | None = None,
                 replay_speed: float = 1.0, settings: Settings | None = None):
        super().__init__()
        # multiprocessing starts its resource tracker with our stderr's file descriptor, which Textual replaces
        # while the app runs: start it now, while stderr is still the terminal, or spawning a run fails.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        self.db_path = db_path
        self.settings = settings or load_settings()
        self._requested_theme = theme
        self._replay = replay
        self._replay_speed = replay_speed
        self.session = None
        self.state = RunState()
        self.generation = 0  # bumped per run, so a late event of an old run is dropped
        self.state_version = 0  # bumped per event: screens redraw only when it moved

    def on_mount(self) -> None:
        for theme in load_themes():
            self.register_theme(theme)
        wanted = self._requested_theme or self.settings.theme
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        if self._replay is not None:
            from tuibench.ui.session import ReplaySession

            self.switch_mode("live")
            self._start(lambda deliver: ReplaySession(self._replay, deliver, self._replay_speed))
        else:
            self.switch_mode("setup")

    # -- runs ---------------------------------------------------------------------------------------

    def start_run(self, spec, requests) -> None:
        from tuibench.ui.session import RunSession

        self._start(lambda deliver: RunSession(spec, requests, self.db_path, deliver))
        self.switch_mode("live")

    def show_stored_run(self, run_id: int) -> None:
        """A stored run on the Live screen, rebuilt from the store through the same reducer."""
        from tuibench.core.store import ResultsStore
        from tuibench.ui.session import stored_run_events

        if self.session is not None and not self.session.done.is_set():
            self.notify("a run is in progress: cancel it first (c on the Live screen)", severity="warning")
            return
        self.session = None
        self.generation += 1
        self.state = RunState()
        with ResultsStore.open(self.db_path, create=False) as store:
            for event in stored_run_events(store, run_id):
                self.state.apply(event)
        self.state.run_id = run_id
        self.state_version += 1
        self.switch_mode("live")

    def _start(self, make_session) -> None:
        if self.session is not None and not self.session.done.is_set():
            self.notify("a run is in progress: cancel it first (c on the Live screen)", severity="warning")
            return
        self.generation += 1
        self.state = RunState()
        self.state_version += 1
        generation = self.generation
        self.session = make_session(lambda event: self.post_message(RunEvent(event, generation))).start()

    def cancel_run(self) -> bool:
        if self.session is None or self.session.done.is_set():
            return False
        self.session.cancel()
        return True

    @property
    def running(self) -> bool:
        return self.session is not None and not self.session.done.is_set()

    def on_run_event(self, message: RunEvent) -> None:
        if message.generation != self.generation:
            return
        self.state.apply(message.event)
        self.state_version += 1
        if self.session is not None and self.session.run_id is not None:
            self.state.run_id = self.session.run_id
        if isinstance(message.event, ev.TERMINAL):
            status = self.state.status
            self.notify(f"run {status}" + (f": {self.state.error}" if self.state.error else ""),
                        severity="information" if status == "finished" else "warning")

    # -- actions ------------------------------------------------------------------------------------

    def action_help(self) -> None:
        from tuibench.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "tuibench-light" if self.theme == "tuibench-dark" else "tuibench-dark"
        self.settings.theme = self.theme
        save_settings(self.settings)

    def on_unmount(self) -> None:
        if self.session is not None:
            self.session.cancel()
            self.session.join(10.0)

"""What every screen shares: the header, the footer, a redraw timer that skips idle ticks, and reading the
store in a thread so that the UI never waits on the disk."""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

REDRAW_HZ = 2.0  # live charts at 10 Hz cost a quarter of a core; 2 Hz still reads as live

if TYPE_CHECKING:
    from tuibench.core.store import ResultsStore

T = TypeVar("T")


class TuibenchScreen(Screen):
    # Esc leaves a text field, so that 1-5, q and ? act again instead of being typed into it.
    BINDINGS = [Binding("escape", "leave_field", "Leave field", show=False)]

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_body()
        yield Footer(compact=True)  # at 80 columns, every screen's keys and the app's fit on its one line

    def action_leave_field(self) -> None:
        if isinstance(self.focused, Input):
            self.set_focus(None)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self._seen_version: object = -1
        self.set_interval(1.0 / REDRAW_HZ, self.maybe_redraw)
        self.maybe_redraw()

    def on_screen_resume(self) -> None:
        self._seen_version = -1  # the state may have moved while another screen was up
        self.maybe_redraw()

    def version(self) -> object:
        """What must change for a redraw: by default, any event of the run."""
        return self.app.state_version

    def maybe_redraw(self) -> None:
        """Redraws if the state moved since the last redraw (the timer calls it; the app too, when a run ends, so
        that the screen agrees with the toast that says so)."""
        # The session's thread writes the plan's state under this lock; a redraw reads it whole, under it too.
        with self.app.plan_state.lock:
            version = self.version()
            if version != self._seen_version:
                self._seen_version = version
                self.redraw()

    def redraw(self) -> None:
        """Reads `self.app.state` and updates the widgets. Called only when the state moved."""

    def again(self) -> None:
        """Redraw now, whether or not the state moved (a key changed what the screen shows)."""
        self._seen_version = -1
        self.maybe_redraw()

    def load(self, read: Callable[[], T], show: Callable[[T], None], group: str = "load") -> None:
        in_thread(self, read, show, group)


def in_thread(node, read: Callable[[], T], show: Callable[[T], None], group: str) -> None:
    """`read()` (the store) in a worker thread of `node` (a screen, the app), then `show(result)` on the UI thread.
    A newer call of the same group replaces one still going, whose result is dropped. A read that fails is said in
    one line (a toast): the screen keeps what it showed, and the app goes on."""
    from textual.worker import get_current_worker

    def work() -> None:
        try:
            result = read()
        except Exception as exc:  # noqa: BLE001 - a locked, foreign or vanished file: said, never a crash
            from tuibench.core.errors import UserError

            said = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            node.app.call_from_thread(node.app.notify, f"could not read the results store: {said}",
                                      severity="error", timeout=10)
            return
        if not get_current_worker().is_cancelled:
            node.app.call_from_thread(show, result)

    node.run_worker(work, thread=True, exclusive=True, group=group, exit_on_error=False)


def read_store(db_path: Path, read: Callable[["ResultsStore"], T], empty: T) -> T:
    """`read(store)` on the results store at `db_path`, or `empty` while there is none yet."""
    from tuibench.core.store import ResultsStore

    if not Path(db_path).exists():
        return empty
    with ResultsStore.open(db_path, create=False) as store:
        return read(store)

"""What every screen shares: the header, the footer, and a redraw timer that skips idle ticks."""

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header

REDRAW_HZ = 2.0  # live charts at 10 Hz cost a quarter of a core; 2 Hz still reads as live


class TuibenchScreen(Screen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self._seen_version: object = -1
        self.set_interval(1.0 / REDRAW_HZ, self._maybe_redraw)
        self._maybe_redraw()

    def on_screen_resume(self) -> None:
        self._seen_version = -1  # the state may have moved while another screen was up
        self._maybe_redraw()

    def version(self) -> object:
        """What must change for a redraw: by default, any event of the run."""
        return self.app.state_version

    def _maybe_redraw(self) -> None:
        version = self.version()
        if version != self._seen_version:
            self._seen_version = version
            self.redraw()

    def redraw(self) -> None:
        """Reads `self.app.state` and updates the widgets. Called only when the state moved."""

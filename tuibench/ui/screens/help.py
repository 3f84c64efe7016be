"""Help: every key binding of every screen, built from the bindings themselves so it cannot go stale."""

import importlib

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

SCREENS = (("everywhere", None), ("Setup", "setup.SetupScreen"), ("Live", "live.LiveScreen"),
           ("Modules", "modules.ModulesScreen"), ("Compare", "compare.CompareScreen"),
           ("History", "history.HistoryScreen"))


def _bindings(target: str | None, app) -> list[Binding]:
    if target is None:  # the app's keys, and those every screen shares
        from tuibench.ui.screens.base import TuibenchScreen

        return [b for b in (*type(app).BINDINGS, *TuibenchScreen.BINDINGS) if isinstance(b, Binding)]
    module, name = target.split(".")
    screen = getattr(importlib.import_module(f"tuibench.ui.screens.{module}"), name)
    return [b for b in screen.BINDINGS if isinstance(b, Binding)]


def help_text(app) -> str:
    lines = ["[b]tuibench[/b] · keyboard first; the footer shows the keys of the screen you are on", ""]
    for title, target in SCREENS:
        lines.append(f"[b]{title}[/b]")
        seen = set()
        for binding in _bindings(target, app):
            key = binding.key_display or binding.key
            if (key, binding.description) in seen or not binding.description:
                continue
            seen.add((key, binding.description))
            # `[` opens a markup tag (one that ran to the next line's `]`, and both keys were lost): escaped, always.
            lines.append(f"  {key.replace('[', chr(92) + '[')}{' ' * max(1, 9 - len(key))}{binding.description}")
        lines.append("")
    lines.append("Esc or ? closes this help.")
    return "\n".join(lines)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("question_mark", "dismiss", "Close", show=False)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_text(self.app), id="help-text")

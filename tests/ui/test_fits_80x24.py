"""Every screen at 80×24 shows its text whole or wraps it: nothing cut at a widget's edge. The snapshots
(test_snapshots.py) keep what the screens look like; this says what no screen may do, at the size users demo at."""

import asyncio

import pytest
from textual.widgets import Collapsible, Input, RichLog, Static

from tuibench.ui.app import TuibenchApp

SIZE = (80, 24)


def cut_text(app) -> list[str]:
    """Each piece of text on the screen that does not fit where it is drawn: a placeholder wider than its field, a
    text needing more rows than its widget has, a widget running past its parent's right edge, a log line wider
    than the log."""
    found = []
    for widget in app.screen.query("*"):
        if not widget.display or not widget.region.area:
            continue
        region, parent = widget.content_region, widget.parent
        what = f"{type(widget).__name__}#{widget.id}"
        if isinstance(widget, Input) and not widget.value and len(widget.placeholder) > region.width:
            found.append(f"{what}: placeholder {widget.placeholder!r} in {region.width} columns")
        if isinstance(widget, RichLog) and any(line.cell_length > region.width for line in widget.lines):
            found.append(f"{what}: a line wider than its {region.width} columns")
        if isinstance(widget, Static):
            text = str(widget.render())[:60]
            if widget.get_content_height(app.screen.size, app.size, region.width) > region.height:
                found.append(f"{what}: {text!r} needs more than its {region.height} row(s)")
            if isinstance(parent.region, object) and widget.region.right > parent.content_region.right:
                found.append(f"{what}: {text!r} runs past its parent's right edge")
    return found


def _at_80x24(sample_db, show) -> tuple[list[str], TuibenchApp]:
    app = TuibenchApp(db_path=sample_db)

    async def main():
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(2):
                await pilot.pause(0.2)
                await app.workers.wait_for_complete()
            await show(app, pilot)
            for _ in range(2):
                await pilot.pause(0.2)
                await app.workers.wait_for_complete()
            return cut_text(app)

    return asyncio.run(main()), app


def _keys(*keys):
    async def show(app, pilot):
        await pilot.press(*keys)
    return show


async def _setup_opened(app, pilot):
    for group in app.screen.query(Collapsible):
        group.collapsed = False


async def _stored_run(app, pilot):
    app.show_stored_run(2)


async def _plan_half_way(app, pilot):
    from ui_helpers import plan_in_progress

    app.show_plan_state(plan_in_progress(app.db_path))
    app.switch_mode("live")


@pytest.mark.parametrize("show", [_setup_opened, _stored_run, _plan_half_way, _keys("3"), _keys("3", "p", "x"),
                                  _keys("4"), _keys("4", "c"), _keys("4", "g", "g"), _keys("5"), _keys("5", "down"),
                                  _keys("question_mark")],
                         ids=["setup, every group open", "live, a stored run", "live, a plan half way", "modules",
                              "modules, decode per layer", "compare", "compare, nothing picked",
                              "compare, a serving sweep", "history", "history, a plan's row", "help"])
def test_no_text_is_cut_at_80x24(sample_db, show):
    cut, _ = _at_80x24(sample_db, show)
    assert cut == []


def test_live_offers_cancel_only_while_a_run_is_in_progress(sample_db):
    """Its footer offered "c Cancel run" on a finished, stored run."""
    async def look(app, pilot):
        app.show_stored_run(2)
        await pilot.pause(0.2)
        bindings = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        app.shown = bindings

    _, app = _at_80x24(sample_db, look)
    assert "toggle_log" in app.shown and "cancel" not in app.shown

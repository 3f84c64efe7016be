"""Live's log is the shown run's alone: a run viewed before leaves no line in the next one's log."""

import asyncio

from textual.widgets import RichLog

from tuibench.core import events as ev
from tuibench.core.reducer import PlanState, RunState
from tuibench.core.spec import DatasetSpec, RunSpec
from tuibench.ui.app import TuibenchApp

SPEC = RunSpec(dataset=DatasetSpec(kind="random", source="random"))


def _run_with(*messages: str) -> PlanState:
    run = RunState()
    run.apply(ev.RunStarted(t_s=0.0, spec=SPEC, num_requests=1, pid=1))
    for number, message in enumerate(messages):
        run.apply(ev.Log(t_s=float(number), message=message))
    return PlanState.of_run(SPEC, run)


def test_a_new_run_starts_the_log_over_even_with_more_lines_than_the_run_before(sample_db):
    """The log cleared only when the new run had fewer lines than the one before: a stored run with one line, then
    a run with three, showed the stored run's line above the new ones."""
    app = TuibenchApp(db_path=sample_db)
    shown: list[str] = []

    async def main():
        async with app.run_test(size=(100, 32)) as pilot:
            app.show_plan_state(_run_with("the stored run's line"))
            app.switch_mode("live")
            await pilot.pause(0.3)
            app.show_plan_state(_run_with("new 1", "new 2", "new 3"))
            await pilot.pause(0.6)
            shown.extend(str(line.text) for line in app.screen.query_one("#log", RichLog).lines)

    asyncio.run(main())
    text = "\n".join(shown)
    assert "new 1" in text and "new 3" in text
    assert "the stored run's line" not in text


def test_a_store_read_that_fails_in_a_screen_is_said_in_one_line(tmp_path):
    """History read a file that is no results store: the worker's error was dropped (exit_on_error=False)."""
    db = tmp_path / "results.db"
    db.write_bytes(b"this is not sqlite" * 100)
    app = TuibenchApp(db_path=db)
    said: list[str] = []

    async def main():
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("5")  # History reads the store
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            await pilot.pause(0.3)
            said.extend(str(n.message) for n in app._notifications)

    asyncio.run(main())
    assert any(m.startswith("could not read the results store:") and "not a readable tuibench results database" in m
               for m in said), said

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

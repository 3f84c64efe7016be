"""Plans started from the app, for real: SmolLM2 in child processes through the run service, the store written,
cancel keeps data, and a plan of two libraries ends side by side on Compare."""

import asyncio
import time

import pytest
from textual.widgets import DataTable, SelectionList

from tuibench.core.store import ResultsStore
from tuibench.ui.app import TuibenchApp
from tuibench.ui.settings import Settings

pytestmark = pytest.mark.slow


def _app(db, **choice) -> TuibenchApp:
    setup = {"datasets": ["random"], "input_len": 8, "output_len": 4, "num_requests": 4, "batch_size": 2} | choice
    return TuibenchApp(db_path=db, settings=Settings(setup=setup))


async def _wait(pilot, condition, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.2)


def test_a_run_started_from_setup_finishes_and_is_stored(tmp_path, model_path):
    db = tmp_path / "results.db"
    app = _app(db)

    async def main():
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            await pilot.press("r")
            await _wait(pilot, lambda: app.state.ended, 180)
            await pilot.pause(0.5)
            assert app.current_mode == "live" and app.state.status == "finished"
            assert "finished" in str(app.screen.query_one("#run-title").render())
            assert "4/4" in str(app.screen.query_one("#rate").render())

    asyncio.run(main())
    with ResultsStore.open(db, create=False) as store:
        (run,) = store.list_runs()
        assert run.status == "finished" and run.metrics.completed == 4 and run.plan_id is not None


def test_cancel_stops_the_run_and_keeps_what_it_measured(tmp_path, model_path):
    db = tmp_path / "results.db"
    app = _app(db, num_requests=40, batch_size=2)
    app.settings.setup["output_len"] = 24

    async def main():
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            await pilot.press("r")
            await _wait(pilot, lambda: app.state.requests_done >= 2, 180)
            await pilot.press("c")
            await _wait(pilot, lambda: app.state.ended, 60)
            assert app.state.status == "interrupted" and "cancelled" in app.state.error

    asyncio.run(main())
    with ResultsStore.open(db, create=False) as store:
        (run,) = store.list_runs()
        stored = store.get_run(run.id)
        assert run.status == "interrupted" and 2 <= len(stored.requests) < 40
        assert store.get_plan(run.plan_id).plan.status == "interrupted"


def test_libraries_ticked_in_setup_end_side_by_side_on_compare(tmp_path, model_path):
    db = tmp_path / "results.db"
    # Served only, and without vLLM: `compare` on the command line runs the three libraries offline and served
    # through the same run service (test_compare.py); here what counts is the app's path from Setup's ticks to
    # Compare, which vLLM's minute of engine start would only lengthen.
    app = _app(db, datasets=["short2short"], scenarios=["serving"], rates=[2])

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            libraries = app.screen.query_one("#libraries", SelectionList)
            libraries.focus()
            values = [libraries.get_option_at_index(i).value for i in range(libraries.option_count)]
            for name in ("llamacpp",):  # transformers is ticked already
                libraries.highlighted = values.index(name)
                await pilot.press("space")
            assert sorted(libraries.selected) == ["llamacpp", "transformers"]
            await pilot.press("r")
            await _wait(pilot, lambda: app.current_mode == "live", 10)
            await _wait(pilot, lambda: len(app.plan_state.steps) == 2, 10)
            await _wait(pilot, lambda: app.plan_state.ended, 900)
            await _wait(pilot, lambda: app.current_mode == "compare" and any(
                table.row_count for table in app.screen.query("#compare-metrics")), 30)
            metrics = app.screen.query_one("#compare-metrics", DataTable)
            columns = [str(c.label) for c in metrics.columns.values()]
            assert columns == ["metric", "transformers (base)", "llamacpp"]
            assert app.screen.picked == [s.run_id for s in app.plan_state.steps]

    asyncio.run(main())
    with ResultsStore.open(db, create=False) as store:
        (plan,) = store.list_plans()
        assert plan.status == "finished" and plan.runs == 2

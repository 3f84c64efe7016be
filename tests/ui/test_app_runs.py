"""Plans started from the app, for real: SmolLM2 in child processes through the run service, the store written
(the one app test on a real engine, end to end); cancel keeps data, and a plan of two libraries ends side by side on
Compare: the app's logic, so on the fake engine (`fake`, and `fake-half-speed`, each step twice the script), listed
in Setup through TUIBENCH_FAKE_LISTED for the app's run service, which inherits this environment."""

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


@pytest.fixture
def fake_listed(monkeypatch, tmp_path):
    """The fake engines in Setup's list, their script 20 ms a prefill, `decode_ms` a decode step."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("TUIBENCH_FAKE_LISTED", "1")
    monkeypatch.setenv("TUIBENCH_FAKE_PREFILL_MS", "20")

    def script(decode_ms: str) -> None:
        monkeypatch.setenv("TUIBENCH_FAKE_DECODE_MS", decode_ms)

    return script


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


def test_cancel_stops_the_run_and_keeps_what_it_measured(tmp_path, model_path, fake_listed):
    fake_listed("25")  # 20 batches of 2, each 20 + 23 x 25 = 595 ms: 12 s if left alone, cancelled after the first
    db = tmp_path / "results.db"
    app = _app(db, libraries=["fake"], num_requests=40, batch_size=2)
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
        assert {r.ttft_ms for r in stored.requests} == {20.0}  # the script's, as measured before the cancel
        assert store.get_plan(run.plan_id).plan.status == "interrupted"


def test_libraries_ticked_in_setup_end_side_by_side_on_compare(tmp_path, model_path, fake_listed):
    fake_listed("5")
    db = tmp_path / "results.db"
    # `compare` on the command line runs real libraries offline and served through the same run service
    # (test_compare.py); here what counts is the app's path from Setup's ticks to Compare: two fakes, offline, so
    # the comparison's answer is known (each TTFT the script exactly: 20 ms and twice that).
    app = _app(db, libraries=["fake"])

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            libraries = app.screen.query_one("#libraries", SelectionList)

            def values() -> list[str]:
                return [libraries.get_option_at_index(i).value for i in range(libraries.option_count)]

            await _wait(pilot, lambda: "fake-half-speed" in values(), 30)  # the run service has listed them
            libraries.focus()
            for name in ("fake-half-speed",):  # the fake is ticked already
                libraries.highlighted = values().index(name)
                await pilot.press("space")
            assert sorted(libraries.selected) == ["fake", "fake-half-speed"]
            await pilot.press("r")
            # Not a wait for Live: the fakes' plan can end, and the app move on to Compare, between two looks.
            await _wait(pilot, lambda: len(app.plan_state.steps) == 2 and app.plan_state.ended, 60)
            await _wait(pilot, lambda: app.current_mode == "compare" and any(
                table.row_count for table in app.screen.query("#compare-metrics")), 30)
            metrics = app.screen.query_one("#compare-metrics", DataTable)
            columns = [str(c.label) for c in metrics.columns.values()]
            assert columns == ["metric", "fake (base)", "fake-half-speed"]
            assert app.screen.picked == [s.run_id for s in app.plan_state.steps]
            rows = [[str(cell) for cell in metrics.get_row(key)] for key in metrics.rows]
            ttft = next(row for row in rows if row[0].startswith("TTFT p50"))
            # The known answer: the fake best (★: its lead is beyond the noise), the other twice its TTFT.
            assert ttft == ["TTFT p50", "[bold green]20.0 ★[/]", "40.0 (2.00×)"], ttft

    asyncio.run(main())
    with ResultsStore.open(db, create=False) as store:
        (plan,) = store.list_plans()
        assert plan.status == "finished" and plan.runs == 2

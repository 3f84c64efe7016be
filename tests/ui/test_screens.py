"""Every screen through Pilot: keys change what it shows. The store is real (a temp SQLite file)."""

import asyncio
import json

from textual.widgets import DataTable, Input, Select, Static

from tuibench.ui.app import TuibenchApp
from tuibench.ui.settings import load_settings


def drive(app: TuibenchApp, script, size=(100, 32)):
    """Runs `script(pilot)` against the app under Pilot (no terminal needed)."""
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(pilot)

    asyncio.run(main())


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def test_setup_shows_libraries_and_the_dataset_histogram_and_refuses_bad_lengths(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        assert app.current_mode == "setup"
        assert "1000 requests" in text_of(app, "#dataset-summary")  # short2short
        app.screen.query_one("#dataset", Select).value = "short2long"
        await pilot.pause()
        assert "output mean" in text_of(app, "#dataset-summary") and "1000 requests" in text_of(app, "#dataset-summary")
        labels = [str(b.label) for b in app.screen.query("RadioButton")]
        assert "transformers" in labels and "profile" in labels
        # The profile scenario with lengths that are not numbers: one line on the screen, no run started.
        app.screen.query_one("#scenario").query("RadioButton")[2].value = True
        app.screen.query_one("#lengths", Input).value = "32,abc"
        await pilot.press("r")
        await pilot.pause()
        assert "whole numbers" in text_of(app, "#setup-error")
        assert app.session is None and app.current_mode == "setup"

    drive(app, script)


def test_history_filters_deletes_on_second_press_and_exports(sample_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await pilot.press("5")
        await pilot.pause()
        table = app.screen.query_one("#runs", DataTable)
        assert [r[0] for r in rows(table)] == ["5", "4", "3", "2", "1"]
        app.screen.query_one("#history-filter", Input).value = "vllm"
        await pilot.pause()
        assert [r[0] for r in rows(table)] == ["3", "2"]
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 5
        await pilot.press("e")  # the cursor is on run 5
        await pilot.pause()
        exported = json.loads((tmp_path / "tuibench-run-5.json").read_text())
        assert exported["run"]["run"]["id"] == 5 and len(exported["module_profiles"]) == 4
        await pilot.press("d")
        await pilot.pause()
        assert table.row_count == 5  # asked, not done
        await pilot.press("d")
        await pilot.pause()
        assert [r[0] for r in rows(table)] == ["4", "3", "2", "1"]

    drive(app, script)


def test_history_opens_a_stored_run_on_the_live_screen(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await pilot.press("5")
        await pilot.pause()
        table = app.screen.query_one("#runs", DataTable)
        table.move_cursor(row=4)  # run 1, offline
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert app.current_mode == "live"
        assert "run 1" in text_of(app, "#run-title") and "finished" in text_of(app, "#run-title")
        percentiles = rows(app.screen.query_one("#percentiles", DataTable))
        assert percentiles[0][0] == "TTFT" and percentiles[0][-1] == "8"

    drive(app, script)


def test_modules_toggles_phase_sorts_expands_layers_and_cycles_lengths(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await pilot.press("3")
        await pilot.pause()
        table = app.screen.query_one("#module-table", DataTable)
        assert "prefill" in text_of(app, "#modules-title") and "input 32" in text_of(app, "#modules-title")
        tree = rows(table)
        assert tree[0][0] == "LlamaForCausalLM" and tree[0][2] == "100.0"
        await pilot.press("p")
        await pilot.pause()
        assert "decode" in text_of(app, "#modules-title")
        await pilot.press("l")
        await pilot.pause()
        assert "context ≈128" in text_of(app, "#modules-title")
        await pilot.press("s")  # leaves by time, longest first
        await pilot.pause()
        times = [float(r[1].replace(",", "")) for r in rows(table)]
        assert times == sorted(times, reverse=True) and len(times) == 5
        await pilot.press("s", "s", "x")  # back to the tree, then every layer too
        await pilot.pause()
        names = [r[0].strip() for r in rows(table)]
        assert "layer 0" in names and "layer 1" in names
        bounds = {r[0].strip(): r[6] for r in rows(table)}
        assert bounds["act_fn"] == "mem" and bounds["gate_proj"] == "comp"

    drive(app, script)


def test_compare_picks_runs_shows_differences_and_sweep_curves(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await pilot.press("4")
        await pilot.pause()
        runs = app.screen.query_one("#compare-runs", DataTable)
        assert [r[1] for r in rows(runs)] == ["4", "3", "2", "1"]  # profiles are compared on the Modules screen
        runs.move_cursor(row=1)  # run 3, part of the sweep
        await pilot.press("a")
        await pilot.pause()
        assert app.screen.picked == [2, 3]
        metrics = rows(app.screen.query_one("#compare-metrics", DataTable))
        ttft_p50 = next(r for r in metrics if r[0] == "TTFT p50 ms")
        assert "%" in ttft_p50[2]  # run 3 against run 2
        await pilot.press("c")
        await pilot.pause()
        assert app.screen.picked == []

    drive(app, script)


def test_help_lists_every_screens_keys_and_closes(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        text = str(app.screen.query_one("#help-text", Static).render())
        for line in ("Cancel run", "Prefill/decode", "Pick sweep", "Delete", "Theme"):
            assert line in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "setup" and not app.screen.query("#help-text")

    drive(app, script)


def test_theme_toggles_and_is_remembered(sample_db):
    app = TuibenchApp(db_path=sample_db)

    async def script(pilot):
        assert app.theme == "tuibench-dark"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme == "tuibench-light"

    drive(app, script)
    assert load_settings().theme == "tuibench-light"
    again = TuibenchApp(db_path=sample_db)

    async def check(pilot):
        assert again.theme == "tuibench-light"

    drive(again, check)


def test_replay_drives_the_live_screen_to_the_recorded_end(sample_db, tmp_path):
    from tuibench.core import events as ev
    from tuibench.core.store import ResultsStore
    from tuibench.ui.session import stored_run_events

    with ResultsStore.open(sample_db) as store:
        events = list(stored_run_events(store, 1))
    app = TuibenchApp(db_path=sample_db, replay=events, replay_speed=50.0)

    async def script(pilot):
        assert app.current_mode == "live"
        for _ in range(100):
            await pilot.pause(0.05)
            if app.state.ended:
                break
        await pilot.pause(0.5)
        assert app.state.status == "finished" and len(app.state.records) == 8
        assert "finished" in text_of(app, "#run-title")
        assert rows(app.screen.query_one("#percentiles", DataTable))[0][-1] == "8"
        assert isinstance(events[-1], ev.RunFinished)

    drive(app, script)

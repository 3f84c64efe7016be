"""Run-validity warnings for real: a run of the fake engine (1.5 s of scripted steps: the warning is tuibench's
telemetry and bookkeeping, not the engine's) made while another process spins on a core carries a warning, stored
with it and shown by `runs show` and the app; the same run on a quiet machine carries none."""

import asyncio
import subprocess
import sys

import pytest

from helpers import cli_env_for, tuibench

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # reads other processes' load on the CPU: alone

# 6 batches of 2, each a 20 ms prefill and 31 decode steps of 7.5 ms: about 1.5 s measured, six telemetry samples.
RUN = ["run", "--library", "fake", "--dataset", "random", "--input-len", "16", "--output-len", "32",
       "--num-requests", "12", "--batch-size", "2"]


@pytest.fixture(scope="module")
def runs_db(tmp_path_factory, model_path):
    """Run 1 on a quiet machine, run 2 beside a process that keeps a core busy."""
    tmp = tmp_path_factory.mktemp("validity")
    env = {**cli_env_for(tmp), "TUIBENCH_FAKE_PREFILL_MS": "20", "TUIBENCH_FAKE_DECODE_MS": "7.5"}
    db = tmp / "results.db"
    quiet = tuibench(*RUN, "--db", str(db), env=env)
    assert quiet.returncode == 0, quiet.stderr
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = tuibench(*RUN, "--db", str(db), env=env)
    finally:
        spinner.kill()
        spinner.wait()
    assert loaded.returncode == 0, loaded.stderr
    assert "⚠ other processes used" in loaded.stdout  # said at the end of the run, under its numbers
    return db, env


def test_runs_show_says_another_process_loaded_the_cpu(runs_db):
    db, env = runs_db
    loaded = tuibench("runs", "--db", str(db), "show", "2", env=env)
    assert loaded.returncode == 0 and "⚠ other processes used" in loaded.stdout
    assert "prompt tokens counted" in loaded.stdout and "as planned" in loaded.stdout
    quiet = tuibench("runs", "--db", str(db), "show", "1", env=env)
    assert quiet.returncode == 0 and "other processes" not in quiet.stdout


def test_the_app_marks_the_run_in_history_and_says_why_on_live(runs_db):
    from textual.widgets import DataTable, Static

    from tuibench.ui.app import TuibenchApp

    db, _ = runs_db
    app = TuibenchApp(db_path=db)

    async def script():
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("5")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            table = app.screen.query_one("#runs", DataTable)
            statuses = {key: str(table.get_row(key)[1]) for key in ("1", "2")}
            assert "⚠" in statuses["2"] and "⚠" not in statuses["1"], statuses
            table.move_cursor(row=table.get_row_index("2"))
            await pilot.press("enter")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.current_mode == "live"
            assert "other processes used" in str(app.screen.query_one("#warnings", Static).render())

    asyncio.run(script())

"""Each screen as an SVG snapshot at 80×24 and 160×48 (pytest-textual-snapshot; `--snapshot-update` to
accept a change after looking at it). The store holds the fixed runs of conftest, at a fixed path."""

import sqlite3
from pathlib import Path

import pytest

from tuibench.ui.app import TuibenchApp

SIZES = [(80, 24), (160, 48)]
FIXED_DB = Path("/tmp/tuibench-snapshots/results.db")  # shown on the History screen: the same on every machine
pytestmark = pytest.mark.xdist_group("snapshots")  # one FIXED_DB: the snapshots take turns under xdist


@pytest.fixture
def snapshot_db(sample_db):
    FIXED_DB.parent.mkdir(parents=True, exist_ok=True)
    FIXED_DB.unlink(missing_ok=True)
    # SQLite's backup, not a file copy: the store runs in WAL mode, and the latest writes may sit in the -wal file.
    with sqlite3.connect(sample_db) as source, sqlite3.connect(FIXED_DB) as target:
        source.backup(target)
    yield FIXED_DB
    FIXED_DB.unlink(missing_ok=True)


async def _settle(pilot):
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()  # the screens read the store in threads
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen, keys", [
    ("setup", []),
    ("modules", ["3"]),
    ("modules_decode_per_layer", ["3", "p", "x"]),
    ("compare", ["4"]),
    ("compare_serving_sweep", ["4", "g", "g"]),
    ("history", ["5"]),
    ("help", ["question_mark"]),
])
def test_screen_snapshot(snap_compare, snapshot_db, screen, keys, size):
    assert snap_compare(TuibenchApp(db_path=snapshot_db), press=[*keys, "_"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_live_snapshot_of_a_stored_run(snap_compare, snapshot_db, size):
    app = TuibenchApp(db_path=snapshot_db)

    async def open_run(pilot):
        app.show_stored_run(2)
        await _settle(pilot)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=open_run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_live_snapshot_of_a_plan_half_way(snap_compare, snapshot_db, size):
    from ui_helpers import plan_in_progress

    app = TuibenchApp(db_path=snapshot_db)

    async def show(pilot):
        app.show_plan_state(plan_in_progress(snapshot_db))
        app.switch_mode("live")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=show)

"""A run through the CLI carries CPU telemetry from the child into the event log and the store: on the fake engine
(the sampler and the recorder are tuibench's), its 4 batches of 2 taking 20 + 15 x 50 = 770 ms each, so the
sampler (every 0.25 s) has a dozen samples to send."""

import json
import sqlite3

import pytest
from helpers import tuibench

pytestmark = pytest.mark.slow


def test_run_streams_cpu_telemetry_to_events_and_db(cli_env, tmp_path, model_path):
    events_path, db_path = tmp_path / "events.jsonl", tmp_path / "results.db"
    env = {**cli_env, "TUIBENCH_FAKE_PREFILL_MS": "20", "TUIBENCH_FAKE_DECODE_MS": "50"}
    result = tuibench("run", "--library", "fake", "--dataset", "random", "--input-len", "8", "--output-len", "16",
                      "--num-requests", "8", "--batch-size", "2", "--warmup-batches", "0", "--events",
                      str(events_path), "--db", str(db_path), env=env)
    assert result.returncode == 0, result.stderr

    events = [json.loads(line) for line in events_path.read_text().splitlines() if line.strip()]
    assert events[-1]["type"] == "run_finished"  # the sampler's last sample comes before it, not after
    cpu = [e for e in events if e["type"] == "telemetry" and e["source"] == "cpu"]
    assert len(cpu) >= 4, "fewer CPU samples than the run's 3 s at one each 0.25 s allow"
    assert all(0.0 <= e["values"]["cpu_pct"] <= 100.0 and e["values"]["rss_mib"] > 0 for e in cpu)
    started_s = events[0]["t_s"]
    assert all(e["t_s"] >= started_s for e in cpu)  # on the run's clock, after RunStarted

    with sqlite3.connect(db_path) as db:
        (rows,) = db.execute("SELECT count(*) FROM telemetry WHERE source = 'cpu'").fetchone()
    assert rows == len(cpu)

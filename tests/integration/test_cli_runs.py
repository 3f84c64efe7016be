"""The headless CLI on the real model: a run, its stored copy, its exports; and runs that end badly (killed,
interrupted: tuibench's handling of its child, so on the fake engine, whose steps take scripted real time)."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import start_tuibench, tuibench, wait_for_events

pytestmark = pytest.mark.slow

SMALL = ["--dataset", "random", "--input-len", "8", "--output-len", "6", "--range-ratio", "0.5", "--batch-size", "2"]
# Long enough that a run is still going when the test interrupts it: on the fake engine (see `long_env`), 20
# batches of 2, each 20 + 39 x 25 = 995 ms, so 20 s if left alone; the test acts after the first batch.
LONG = ["--library", "fake", "--dataset", "random", "--input-len", "8", "--output-len", "40", "--num-requests", "40",
        "--batch-size", "2", "--warmup-batches", "0"]


@pytest.fixture
def long_env(cli_env):
    return {**cli_env, "TUIBENCH_FAKE_PREFILL_MS": "20", "TUIBENCH_FAKE_DECODE_MS": "25"}


def test_run_prints_table_and_runs_lists_shows_exports(cli_env, tmp_path, model_path):
    out_json, events = tmp_path / "run.json", tmp_path / "events.jsonl"
    result = tuibench("run", *SMALL, "--num-requests", "4", "--json", str(out_json), "--events", str(events), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "output tok/s" in result.stdout and "TTFT" in result.stdout and "run 1: finished" in result.stdout

    document = json.loads(out_json.read_text())
    assert document["run"]["status"] == "finished" and document["run"]["metrics"]["completed"] == 4
    assert [r["output_tokens"] for r in document["requests"]] == [r["target_output_tokens"] for r in document["requests"]]
    types = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    # What the parent says before the child starts (where the engine's output goes) comes first; then the child's.
    assert set(types[:types.index("run_started")]) <= {"log", "phase"}
    assert types[-1] == "run_finished" and types.count("request_done") == 4

    listing = tuibench("runs", env=cli_env)
    assert listing.returncode == 0 and "finished" in listing.stdout and "transformers" in listing.stdout
    shown = tuibench("runs", "show", "1", env=cli_env)
    assert shown.returncode == 0 and "TPOT" in shown.stdout and "torch" in shown.stdout
    exported = tuibench("runs", "export", "1", "--format", "csv", env=cli_env)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 4 and all(float(r["ttft_ms"]) > 0 for r in rows)
    as_json = tuibench("runs", "export", "1", "--format", "json", env=cli_env)
    assert json.loads(as_json.stdout) == document
    missing = tuibench("runs", "show", "9", env=cli_env)
    assert missing.returncode == 2 and "no run 9" in missing.stderr


def test_context_longer_than_the_model_fails_as_bad_input(cli_env, model_path):
    result = tuibench("run", "--dataset", "short-16k", "--num-requests", "1", env=cli_env)
    assert result.returncode == 2, result.stderr
    assert "tokens of context but smollm2-135m has 8192" in result.stderr


def _stored_run(cli_env):
    exported = tuibench("runs", "export", "1", "--format", "json", env=cli_env)
    assert exported.returncode == 0, exported.stderr
    return json.loads(exported.stdout)


def _pid_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie still answers kill(0); it is gone for our purpose once it no longer runs.
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_killed_child_keeps_partial_results_and_fails_the_run(cli_env, long_env, tmp_path, model_path):
    events = tmp_path / "events.jsonl"
    process = start_tuibench("run", *LONG, "--events", str(events), env=long_env)
    seen = wait_for_events(events, "request_done", count=2)
    child_pid = next(e["pid"] for e in seen if e["type"] == "run_started")
    os.kill(child_pid, signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert "died" in stderr and "SIGKILL" in stderr

    document = _stored_run(cli_env)
    assert document["run"]["status"] == "failed" and "SIGKILL" in document["run"]["error"]
    done = document["run"]["metrics"]["completed"]
    assert 2 <= done < 40 and len(document["requests"]) == done
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert logged[-1]["type"] == "run_failed" and logged[-1]["kind"] == "crashed"


@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
                         ids=["ctrl-c", "kill", "ctrl-c-twice"])
def test_ctrl_c_or_kill_stops_the_child_keeps_partial_results_and_marks_interrupted(cli_env, long_env, tmp_path,
                                                                                   model_path, signals):
    """A second Ctrl-C while the first stops the child used to cut the stopping short: the run's last line and
    its stored status were lost. It now waits for them."""
    events = tmp_path / "events.jsonl"
    process = start_tuibench("run", *LONG, "--events", str(events), env=long_env)
    seen = wait_for_events(events, "request_done", count=2)
    child_pid = next(e["pid"] for e in seen if e["type"] == "run_started")
    for number, how in enumerate(signals):
        if number:
            time.sleep(0.05)  # while the child is being stopped
        process.send_signal(how)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "tuibench: run 1 interrupted: interrupted by the user (Ctrl-C)\n" in stderr, stderr
    assert _pid_gone(child_pid), "the child outlived the interrupted run"
    assert "requests done" in stdout and "failed requests" in stdout  # what was measured is still printed

    document = _stored_run(cli_env)
    assert document["run"]["status"] == "interrupted"
    done = document["run"]["metrics"]["completed"]
    assert 2 <= done < 40 and len(document["requests"]) == done


def test_ctrl_c_into_tee_stores_the_plan_interrupted_as_its_run(cli_env, long_env, tmp_path, model_path):
    """`tuibench run … | tee log`, then Ctrl-C: the terminal sends SIGINT to both, tee ends first, and the next
    progress line raised BrokenPipeError while the run was being stopped, so the plan was stored as failed beside its
    interrupted run."""
    from tuibench.core.store import ResultsStore

    events = tmp_path / "events.jsonl"
    command = " ".join([sys.executable, "-m", "tuibench", "run", *LONG, "--events", str(events)])
    shell = subprocess.Popen(["bash", "-c", f"{command} | tee {tmp_path / 'out.txt'}"], env=long_env,
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_events(events, "request_done", count=2)
    os.killpg(shell.pid, signal.SIGINT)  # the whole pipeline, as a terminal's Ctrl-C
    _, stderr = shell.communicate(timeout=60)
    assert "run 1 interrupted: interrupted by the user (Ctrl-C)" in stderr and "Traceback" not in stderr, stderr
    with ResultsStore.open(Path(long_env["XDG_DATA_HOME"]) / "tuibench" / "results.db", create=False) as store:
        (plan,) = store.list_plans()
        (run,) = store.list_runs()
    assert (plan.status, run.status) == ("interrupted", "interrupted")

"""The serving scenario for real: `transformers serve` launched by tuibench on 127.0.0.1, SmolLM2 on CPU."""

import json
import os
import re
import signal
import socket

import pytest

from helpers import start_tuibench, tuibench, wait_for_events

pytestmark = pytest.mark.slow

SERVING = ["--scenario", "serving", "--library", "transformers", "--dataset", "random", "--input-len", "12"]


def _stored(cli_env):
    return json.loads(tuibench("runs", "export", "1", "--format", "json", env=cli_env).stdout)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_two_rate_sweep_on_one_server_holds_lengths_and_the_server_is_stopped(cli_env, tmp_path, model_path):
    """One run per rate, stored under one plan, on one server launched for the first rate (its cold start is that
    run's; the second reused it) and stopped when the sweep ends. (Was two tests, each launching its server: this
    one's and `test_served_outputs_hold_their_length_and_the_server_is_stopped`, 15.4 s and about 10 s.)"""
    out = tmp_path / "sweep.json"
    result = tuibench("run", *SERVING, "--output-len", "7", "--num-requests", "3", "--rates", "4,inf",
                      "--json", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("started transformers serve") == 1
    assert "each library's figures against the offered request rate" in result.stdout  # the sweep's table
    documents = json.loads(out.read_text())
    assert [d["run"]["spec"]["serving"]["request_rate"] for d in documents] == [4.0, None]
    plans = {d["run"]["plan_id"] for d in documents}
    assert len(plans) == 1 and None not in plans  # one plan: the sweep
    assert all(d["run"]["metrics"]["completed"] == 3 and d["run"]["status"] == "finished" for d in documents)
    for document in documents:
        requests = document["requests"]
        assert [r["output_tokens"] for r in requests] == [7, 7, 7]
        assert all(r["scheduled_s"] is not None and r["ttft_ms"] > 0 for r in requests)
    assert "schedule lag" in result.stdout
    port = int(re.search(r"127\.0\.0\.1:(\d+)", result.stdout).group(1))
    assert not _port_open(port), "the server outlived the run"
    cold = documents[0]["run"]["metrics"]["cold_start"]  # launched for the first rate's run
    assert cold["process_start_s"] >= 0 and cold["load_s"] > 0 and cold["first_request_s"] > 0
    assert "cold start" in result.stdout
    assert documents[1]["run"]["metrics"]["cold_start"] is None
    listing = tuibench("runs", env=cli_env).stdout
    assert len([line for line in listing.splitlines() if "serving" in line]) == 2


def _start_and_wait_for_a_request(cli_env, events, *args):
    """Starts a serving run; once one request is done, returns the process and the server's pid and port."""
    process = start_tuibench("run", *SERVING, *args, "--events", str(events), env=cli_env)
    for line in process.stdout:
        if match := re.search(r"\(pid (\d+)\) on http://127\.0\.0\.1:(\d+)", line):
            break
    else:
        raise AssertionError("the server's pid and port were never printed")
    wait_for_events(events, "request_done", count=1)
    return process, int(match.group(1)), int(match.group(2))


def test_server_killed_mid_run_counts_failed_requests_and_saves_a_partial_run(cli_env, tmp_path, model_path):
    events = tmp_path / "events.jsonl"
    process, server_pid, _ = _start_and_wait_for_a_request(
        cli_env, events, "--output-len", "40", "--num-requests", "8", "--max-concurrency", "2")
    os.killpg(server_pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "partial" in stderr and "requests failed" in stderr
    document = _stored(cli_env)
    metrics = document["run"]["metrics"]
    assert document["run"]["status"] == "partial"
    assert metrics["completed"] >= 1 and metrics["failed"] >= 1 and metrics["completed"] + metrics["failed"] == 8
    errors = {r["error"].split(":")[0] for r in document["requests"] if r["error"]}
    assert errors <= {"connection failed", "connection lost", "server disconnected mid-stream"}, errors
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(e["type"] == "log" and "exited mid-run" in e["message"] for e in logged)


def test_port_already_in_use_is_one_clear_line(cli_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = tuibench("run", *SERVING, "--num-requests", "1", "--port", str(port), env=cli_env)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_ctrl_c_while_serving_stops_run_and_server(cli_env, tmp_path, model_path):
    events = tmp_path / "events.jsonl"
    process, _, port = _start_and_wait_for_a_request(
        cli_env, events, "--output-len", "60", "--num-requests", "6", "--max-concurrency", "1")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert _stored(cli_env)["run"]["status"] == "interrupted"
    assert not _port_open(port), "the server outlived the interrupted run"

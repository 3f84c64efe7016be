"""One arrival schedule sent by two client processes (--client-workers 2) against the known-answer server: every
request stored once with its worker, the metrics those of the same records as one client, and a worker killed
mid-run leaves its requests failed and named, the run partial."""

import json
import random
import time

import msgspec
import psutil
import pytest

from helpers import MockServer, serve_and_kill_a_client_worker, tuibench

pytestmark = pytest.mark.slow

SERVE = ["run", "--scenario", "serving", "--served-model-name", "mock", "--dataset", "random", "--input-len", "16",
         "--client-workers", "2"]


@pytest.fixture(scope="module")
def mock_server():
    server = MockServer("--ttft-ms", "20", "--itl-ms", "5")
    yield server
    server.stop()


def test_two_workers_send_one_schedule_and_their_records_make_one_run(mock_server, cli_env, tmp_path, model_path):
    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.store import ResultsStore

    db = tmp_path / "results.db"
    result = tuibench(*SERVE, "--endpoint", mock_server.url, "--output-len", "8", "--num-requests", "40",
                      "--request-rate", "40", "--db", str(db), "--json", str(tmp_path / "run.json"), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "client workers" in result.stdout
    assert "server metrics: N/A" in result.stdout  # the mock server has no /metrics: not applicable, no error
    requests = json.loads((tmp_path / "run.json").read_text())["requests"]
    assert sorted(r["index"] for r in requests) == list(range(40))  # each request once
    assert {w: sum(r["worker"] == w for r in requests) for w in (0, 1)} == {0: 20, 1: 20}
    assert all(r["index"] % 2 == r["worker"] for r in requests)  # request k went to worker k mod 2
    with ResultsStore.open(db) as store:
        stored = store.get_run(1)
    assert [r.worker for r in stored.requests] == [i % 2 for i in range(40)]
    # The merged records, computed as one client's, are the run's metrics.
    again = compute_metrics(stored.requests, telemetry=[])
    assert msgspec.structs.replace(stored.run.metrics, energy_per_output_token_j=None) == again
    assert again.failed == 0 and again.output_tokens == 320
    # One schedule, not two: request k planned at the origin + offset k of the run's seeded Poisson schedule (seed
    # 0, 40 req/s), recomputed from its definition (arrivals.py: gamma gaps of shape 1, mean 1/40 s, from Random(0)).
    # Within 1e-9 s: the rounding of origin + offset and of the run's clock is the only error; two workers drawing a
    # schedule each would be off by milliseconds.
    rng, offsets, now = random.Random(0), [], 0.0
    for _ in range(40):
        offsets.append(now)
        now += rng.gammavariate(1.0, 1.0 / 40.0)
    scheduled = [r.scheduled_s for r in stored.requests]
    assert [t - scheduled[0] for t in scheduled] == pytest.approx(offsets, abs=1e-9)
    # The offered rate is (n - 1) / the schedule's span: exactly that schedule's (to the same rounding).
    assert again.offered_rps == pytest.approx(39 / offsets[-1], rel=1e-9)


def _workers_of(cli: psutil.Process, timeout_s: float = 60) -> dict[int, psutil.Process]:
    """The client processes under the run's child (`python -m tuibench.loadgen.workers N`), by worker number."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = {}
        for process in cli.children(recursive=True):
            try:
                argv = process.cmdline()
            except psutil.Error:
                continue
            if "tuibench.loadgen.workers" in argv:
                found[int(argv[-1])] = process
        if len(found) == 2:
            return found
        time.sleep(0.05)
    raise AssertionError("no two client workers started")


def test_a_worker_killed_mid_run_leaves_its_requests_failed_and_named(mock_server, cli_env, tmp_path, model_path):
    requests = serve_and_kill_a_client_worker(SERVE, cli_env, tmp_path / "run.json",
                                              lambda cli: _workers_of(psutil.Process(cli.pid))[1], sent_s=1.5,
                                              timeout_s=120)
    failed = [r for r in requests if r["error"]]
    assert failed and all(r["worker"] == 1 and "client worker 1 died" in r["error"] for r in failed)
    assert all(r["error"] is None for r in requests if r["worker"] == 0)

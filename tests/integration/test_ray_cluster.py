"""A run on a real local Ray cluster (one node, 127.0.0.1, started and stopped here): client workers as actors
send one schedule and every request is stored once with its worker and clock offset, the node agent's telemetry
reaches the events and the store, `auto` finds the cluster, and an actor killed mid-run fails its requests by
name. `ray stop` leaves no Ray process behind (the session's cluster: tests/integration/conftest.py)."""

import json
import time

import msgspec
import psutil
import pytest

from helpers import RAY_ENV, MockServer, serve_and_kill_a_client_worker, tuibench

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.serial]  # clock offsets within 5 ms: alone

SERVE = ["run", "--scenario", "serving", "--served-model-name", "mock", "--dataset", "random", "--input-len", "16",
         "--client-workers", "2"]


@pytest.fixture
def cluster(ray_cluster):
    """The session's local Ray cluster (tests/integration/conftest.py), stopped at the session's end."""
    return ray_cluster


@pytest.fixture(scope="module")
def mock_server():
    server = MockServer("--ttft-ms", "20", "--itl-ms", "5")
    yield server
    server.stop()


@pytest.fixture
def ray_env(cli_env):
    # Not RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER: tuibench itself keeps a loopback address on loopback.
    return {**cli_env, **{k: v for k, v in RAY_ENV.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}}


def test_ray_workers_send_one_schedule_with_their_clock_offsets_and_every_node_is_sampled(
        cluster, mock_server, ray_env, tmp_path, model_path):
    from tuibench.core.aggregate import compute_metrics
    from tuibench.core.store import ResultsStore

    db, events = tmp_path / "results.db", tmp_path / "events.jsonl"
    result = tuibench(*SERVE, "--endpoint", mock_server.url, "--output-len", "8", "--num-requests", "40",
                      "--request-rate", "40", "--telemetry-hz", "10", "--ray-address", "auto", "--db", str(db),
                      "--events", str(events), env=ray_env)
    assert result.returncode == 0, result.stderr
    assert "2 Ray actors on the cluster (1 node(s))" in result.stdout
    assert "clock offset ms" in result.stdout  # the workers table shows each actor's clock
    with ResultsStore.open(db) as store:
        stored, telemetry = store.get_run(1), list(store.telemetry(1))
    assert stored.run.spec.ray_address == cluster.address  # `auto` is stored as the cluster it found
    assert [r.index for r in stored.requests] == list(range(40))
    assert [r.worker for r in stored.requests] == [i % 2 for i in range(40)]
    # Same machine, so the true offset is 0: what was measured is within a few ms of it, and kept per record.
    assert all(r.clock_offset_ms is not None and abs(r.clock_offset_ms) < 5 for r in stored.requests)
    again = compute_metrics(stored.requests, telemetry=[])
    assert msgspec.structs.replace(stored.run.metrics, energy_per_output_token_j=None) == again
    assert again.failed == 0 and again.output_tokens == 320
    # The environment lists the cluster's node with its CPUs, and its clock against the run's.
    (node,) = stored.run.environment["cluster"]["nodes"]
    assert node["address"] == "127.0.0.1" and node["cpus"] == 2 and abs(node["clock_offset_ms"]) < 5
    # The node agent's samples (this node has no GPU: its CPU) reach the events and the store, on the run's clock.
    sampled = [e for e in map(json.loads, events.read_text().splitlines())
               if e["type"] == "telemetry" and e["source"] == "cpu@127.0.0.1"]
    assert len(sampled) >= 3 and all(0 <= e["t_s"] < 120 for e in sampled)
    stored_sources = {s.source for s in telemetry}
    assert {"cpu", "cpu@127.0.0.1"} <= stored_sources
    shown = tuibench("runs", "--db", str(db), "show", "1", env=ray_env)
    assert f"ray cluster {cluster.address}: 1 node(s)" in shown.stdout


def _client_actor(timeout_s: float = 60) -> psutil.Process:
    """The process of a client actor that has begun sending (Ray names it after the running method)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            if any("ClientAgent.run" in part for part in process.info["cmdline"] or []):
                return process
        time.sleep(0.05)
    raise AssertionError("no client actor started sending")


def test_a_ray_worker_killed_mid_run_leaves_its_requests_failed_and_named(cluster, ray_env, tmp_path, model_path):
    requests = serve_and_kill_a_client_worker([*SERVE, "--ray-address", cluster.address], ray_env,
                                              tmp_path / "run.json", lambda cli: _client_actor(), sent_s=1.0,
                                              timeout_s=180)
    failed = [r for r in requests if r["error"]]
    assert failed and len({r["worker"] for r in failed}) == 1
    assert all(f"client worker {r['worker']} died (Ray actor" in r["error"] for r in failed)
    assert any(r["error"] is None for r in requests)

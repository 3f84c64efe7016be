"""`tuibench capacity` against the known-answer server serving one request at a time: each takes 20 + 5 × 10 =
70 ms, so no rate above 1 / 0.07 = 14.3 req/s can hold TTFT p99 under 150 ms (the queue grows without bound
there), while 4 req/s holds it easily. The search must bracket its capacity between those, on one server,
every probe a stored run."""

import json

import pytest

from helpers import MockServer, tuibench
from tuibench.core.store import ResultsStore

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # rests on the mock's real service time: alone


def test_capacity_of_a_one_slot_server_is_bracketed_below_its_service_rate(cli_env, tmp_path, model_path):
    server = MockServer("--ttft-ms", "20", "--itl-ms", "10", "--max-concurrency", "1")
    out = tmp_path / "capacity.json"
    try:
        result = tuibench("capacity", "--library", "endpoint", "--endpoint", server.url, "--served-model-name", "mock",
                          "--dataset", "random", "--input-len", "8", "--output-len", "6", "--num-requests", "30",
                          "--slo", "ttft_p99=150", "--start-rate", "4", "--precision", "0.4", "--json", str(out),
                          "--figures", str(tmp_path / "figures"),
                          env=cli_env, timeout=600)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    (capacity,) = document["capacities"]
    probes = capacity["probes"]
    rates = [p["rate_rps"] for p in probes]
    assert rates[:2] == [4.0, 8.0]  # doubling from the start rate
    found, missed = capacity["bracket"]["met_rps"], capacity["bracket"]["missed_rps"]
    assert 4.0 <= found < 1 / 0.070 and found < missed <= found * 1.4
    for probe in probes:  # what each probe says agrees with its TTFT p99
        assert probe["met"] == (probe["ttft_p99_ms"] <= 150 and not probe["missed"])
    assert len({p["run_id"] for p in probes}) == len(probes)  # every probe a stored run
    verdict = f"endpoint sustains {found:.3g} req/s under the SLO (ttft_p99≤150 ms)"
    assert document["verdicts"] == [f"random(8/6±0): {verdict}"] and verdict in result.stdout
    assert all(probe["measured_ms"]["ttft_p99≤150 ms"] == probe["ttft_p99_ms"] for probe in probes)
    assert all((tmp_path / "figures" / f"capacity.{suffix}").stat().st_size > 5000 for suffix in ("png", "svg"))
    # One plan, its probes the runs of its one step: listed under the plan, and shown again by `compare show`.
    (step,) = document["steps"]
    assert step["scenario"] == "capacity" and step["status"] == "finished"
    plan_id = document["plan"]["id"]
    with ResultsStore.open(tmp_path / "data" / "tuibench" / "results.db", create=False) as store:
        assert {r.id for r in store.list_runs() if r.plan_id == plan_id} == {p["run_id"] for p in probes}
    again = tuibench("compare", "show", str(plan_id), env=cli_env, timeout=60)
    assert again.returncode == 0 and verdict in again.stdout and "capacity probes" in again.stdout


def test_a_bad_objective_is_one_line_and_exit_2(cli_env):
    result = tuibench("capacity", "--slo", "ttft=500", env=cli_env, timeout=60)
    assert result.returncode == 2
    assert "unknown objective 'ttft'" in result.stderr and len(result.stderr.strip().splitlines()) <= 2

"""The fake engine through the real run service (child process, SQLite store, managed server): what it reports is
its script, exactly, in every scenario (offline, serving through the managed mock server, profile)."""

import json
import time

import pytest

from tuibench.core.spec import DatasetSpec, OfflineParams, ProfileParams, RunSpec, ServingParams
from tuibench.core.store import ResultsStore
from tuibench.runner.plans import plan_of_spec
from tuibench.runner.service import run_plan

DATASET = DatasetSpec(kind="random", source="random", input_len=12, output_len=6, range_ratio=0.5)


@pytest.fixture
def script(monkeypatch, tmp_path):
    """Step times for this test's runs: the child and the managed server inherit the environment."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the server's log, away from the user's

    def set_script(prefill_ms: str, decode_ms: str) -> None:
        monkeypatch.setenv("TUIBENCH_FAKE_PREFILL_MS", prefill_ms)
        monkeypatch.setenv("TUIBENCH_FAKE_DECODE_MS", decode_ms)

    return set_script


def _run(spec: RunSpec, tmp_path):
    """The spec run as one plan, by the run service; its final state and what the store keeps of it."""
    with ResultsStore.open(tmp_path / "r.db") as store:
        (step,) = run_plan(plan_of_spec(spec), store).steps
        stored = store.get_run(step.run_id)
        profiles = store.module_profiles(step.run_id)
    assert step.run.status == "finished", step.run.error
    return step.run, stored, profiles


def test_fake_engine_offline_records_are_the_script(script, tmp_path, model_path):
    script("30", "7")
    from tuibench.core.workload import load_requests

    spec = RunSpec(library="fake", dataset=DATASET, offline=OfflineParams(batch_size=3), num_requests=7, seed=3)
    planned = load_requests(DATASET, 7, 3)
    started = time.perf_counter()
    state, stored, _ = _run(spec, tmp_path)
    elapsed_s = time.perf_counter() - started
    records = sorted(stored.requests, key=lambda r: r.index)
    assert [r.index for r in records] == list(range(7))
    for record, request in zip(records, planned, strict=True):
        n = request.output_tokens
        assert record.output_tokens == record.target_output_tokens == n
        assert record.input_tokens == record.counted_input_tokens == request.input_tokens
        assert record.ttft_ms == 30.0 and record.itl_ms == [7.0] * (n - 1)
        assert record.e2el_ms == 30.0 + (n - 1) * 7.0
        assert record.batch == record.index // 3  # static batches of 3, in order
    assert [(b.batch, b.size) for b in stored.batches] == [(0, 3), (1, 3), (2, 1)]
    for batch in stored.batches:
        longest = max(r.output_tokens for r in records if r.batch == batch.batch)
        assert (batch.prefill_ms, batch.decode_ms, batch.decode_steps) == (30.0, (longest - 1) * 7.0, longest - 1)
    # It slept its script: the measured batches alone take their scripted time (and the warm-up batch its own).
    assert elapsed_s > sum(b.prefill_ms + b.decode_ms for b in stored.batches) / 1000.0
    metrics = state.metrics()
    assert metrics.output_tokens == sum(r.output_tokens for r in planned)
    assert list(state.phase_started_s) == ["loading", "warmup", "measuring"]


def test_fake_engine_serves_through_the_managed_mock_server(script, tmp_path, model_path):
    """The run service starts `tuibench mock-server` with the script as its TTFT and ITL, sends the load and stops it.
    Over HTTP the times are the schedule plus the client's own latency: each at least the script, not far above."""
    script("40", "8")
    spec = RunSpec(library="fake", scenario="serving", dataset=DATASET, num_requests=6, seed=1,
                   serving=ServingParams(request_rate=20.0, prompt_ids=True))
    state, stored, _ = _run(spec, tmp_path)
    assert state.requests_done == 6 and all(r.ok for r in stored.requests)
    for record in stored.requests:
        assert record.output_tokens == record.target_output_tokens
        assert record.counted_input_tokens == record.input_tokens  # ids, counted as sent
        assert 40.0 <= record.ttft_ms < 40.0 + 250.0, record
        # The server sends on deadlines set from the request's start (a late chunk is followed by a short gap): the
        # last token is due 40 + (n - 1) x 8 ms after it.
        assert len(record.itl_ms) == record.output_tokens - 1
        assert 40.0 + (record.output_tokens - 1) * 8.0 <= record.e2el_ms < 40.0 + record.output_tokens * 8.0 + 250.0
    # A late first token is caught up on (its deadlines are fixed): the mean TPOT is the ITL, give or take the jitter.
    assert state.metrics().tpot_ms.mean == pytest.approx(8.0, abs=3.0)
    serving = stored.run.spec.serving
    assert serving.managed and serving.endpoint.startswith("http://127.0.0.1:")


def test_fake_engine_profile_gives_the_scripted_module_times(script, tmp_path, model_path):
    """Each step's time spread evenly over the model's leaf modules: whole nanoseconds each, the LM head taking the
    rest, so a step sums to its script exactly and the timer costs nothing."""
    layers = json.loads((model_path / "config.json").read_text())["num_hidden_layers"]
    leaves = 13 * layers + 3  # per layer 2 norms, 7 of attention, 4 of the MLP; the embedding, final norm, LM head
    script(f"{leaves * 0.1:.6f}", f"{leaves * 0.02:.6f}")  # 0.1 ms and 0.02 ms per leaf
    spec = RunSpec(library="fake", scenario="profile", dataset=DatasetSpec(kind="random", source="random"),
                   profile=ProfileParams(lengths=(16, 32), batch_size=2, decode_steps=3, repeats=2))
    state, _, profiles = _run(spec, tmp_path)
    assert profiles == state.profiles
    assert [(p.phase, p.input_len) for p in profiles] == [("prefill", 16), ("decode", 16), ("prefill", 32),
                                                          ("decode", 32)]
    for profile in profiles:
        leaf_ms, steps = (0.1, 2) if profile.phase == "prefill" else (0.02, 2 * 3)
        assert profile.library == "fake" and profile.steps == steps and profile.roofline is None
        assert profile.step_ms == profile.step_wall_ms == pytest.approx(leaf_ms * leaves, abs=1e-9)
        assert profile.timer_on_off == 1.0
        timed = [n for n in profile.root.walk() if n.is_leaf and n.kind != "self"]
        assert len({n.name for n in timed}) == 16
        # No inline time: a composite is the sum of its modules (to the float rounding of ns / 1e6 summed in ms).
        assert all(n.time_ms < 1e-9 for n in profile.root.walk() if n.kind == "self")
        layer_nodes = next(n for n in profile.root.walk() if n.kind == "layers").layers
        assert len(layer_nodes) == layers
        for node in layer_nodes[0].walk():
            if node.is_leaf and node.kind != "self":
                assert node.time_ms == pytest.approx(leaf_ms, abs=1e-12) and node.calls == 1
        assert profile.books.outside_ms == pytest.approx(0.0, abs=1e-9)


def test_fake_engine_takes_real_time_so_a_cancel_stops_it_and_keeps_what_it_measured(script, tmp_path, model_path):
    """Each batch sleeps its script (here 0.3 s + 0.1 s per token after the first): a cancel after the first
    measured batch stops the run there, interrupted, with that batch's requests stored."""
    from tuibench.core.events import RequestDone

    script("300", "100")
    spec = RunSpec(library="fake", dataset=DATASET, offline=OfflineParams(batch_size=2, warmup_batches=0),
                   num_requests=12, seed=3)
    done = []

    def observer(event, state) -> None:
        if isinstance(event, RequestDone):
            done.append(event.record.index)

    with ResultsStore.open(tmp_path / "r.db") as store:
        (step,) = run_plan(plan_of_spec(spec), store, observer=observer, cancel=lambda: len(done) >= 2).steps
        stored = store.get_run(step.run_id)
    assert step.run.status == "interrupted" and stored.run.status == "interrupted"
    assert 2 <= len(stored.requests) < 12 and all(r.ttft_ms == 300.0 for r in stored.requests)

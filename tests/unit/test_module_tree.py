"""The timing tree: nesting by call, layers folded, inline time made visible, theory attached."""

import pytest

from tuibench.analysis.theory import ModelShape, Workload, breakdown
from tuibench.profiling.timer import StepTimes
from tuibench.profiling.tree import TheoryMap, build_tree, mean_step, profile_from_steps

SHAPE = ModelShape(hidden=8, intermediate=16, heads=2, kv_heads=1, head_dim=4, layers=2, vocab=10)
THEORY = TheoryMap(leaves={"q_proj": ("q_proj",), "attn_core": ("attn_core",), "lm_head": ("lm_head",)},
                   inline={"layer": ("attn_residual", "mlp_residual")})
MS = 1_000_000


def _step(scale: int = 1) -> StepTimes:
    # (path, parent, ms): a root, two layers with attention (q_proj and the attention core), an LM head.
    rows = [("M", None, 100), ("M.layers.0", "M", 40), ("M.layers.0.attn", "M.layers.0", 30),
            ("M.layers.0.attn.q_proj", "M.layers.0.attn", 10), ("M.layers.0.attn.attn_core", "M.layers.0.attn", 15),
            ("M.layers.1", "M", 44), ("M.layers.1.attn", "M.layers.1", 30),
            ("M.layers.1.attn.q_proj", "M.layers.1.attn", 12), ("M.layers.1.attn.attn_core", "M.layers.1.attn", 16),
            ("M.lm_head", "M", 6)]
    return StepTimes(tag="prefill", ns={p: ms * MS * scale for p, _, ms in rows}, calls={p: 1 for p, _, _ in rows},
                     order=[p for p, _, _ in rows], parents={p: parent for p, parent, _ in rows},
                     total_ns=100 * MS * scale)


def test_layers_fold_into_one_node_that_keeps_each_layer():
    costs = breakdown(SHAPE, Workload.prefill(1, 3))
    root = build_tree([_step()], THEORY, costs)
    assert root.kind == "step" and root.time_ms == 100
    layers = root.children[0]
    assert layers.name == "layers ×2" and layers.kind == "layers" and layers.time_ms == 84
    assert [layer.name for layer in layers.layers] == ["layer 0", "layer 1"]
    attn = layers.children[0]
    assert attn.name == "attn" and attn.time_ms == 60
    q_proj, core, inline = attn.children
    assert (q_proj.time_ms, core.name, core.time_ms) == (22, "attention core", 31)
    assert inline.kind == "self" and inline.time_ms == pytest.approx(7)  # 60 - 22 - 31
    # Theory: the folded q_proj is both layers' q_proj; the layer's inline time carries the residual adds.
    assert q_proj.cost == costs.module("q_proj")
    layer_inline = layers.children[-1]
    assert layer_inline.name == "(inline: residual add)" and layer_inline.time_ms == pytest.approx(24)
    assert layer_inline.cost == (costs.layer["attn_residual"] + costs.layer["mlp_residual"]) * 2


def test_coverage_counts_named_leaves_only():
    profile = profile_from_steps([_step()], library="x", input_len=3, work=Workload.prefill(1, 3), shape=SHAPE,
                                 attn="sdpa", roofline=None, theory=THEORY)
    # Named leaves: q_proj 22 + attention core 31 + lm_head 6 = 59 of 100 ms.
    assert profile.coverage == pytest.approx(0.59)
    assert profile.verdict(profile.root) is None  # no roofline: no verdict


def test_mean_step_averages_time_per_path():
    mean = mean_step([_step(1), _step(3)])
    assert mean.ns["M.lm_head"] == 12 * MS and mean.total_ns == 200 * MS
    with pytest.raises(ValueError):
        mean_step([])


def test_two_outermost_calls_get_a_step_root():
    step = StepTimes(tag="decode", ns={"M": 9 * MS, "logits": 1 * MS}, calls={"M": 1, "logits": 1},
                     order=["M", "logits"], parents={"M": None, "logits": None}, total_ns=10 * MS)
    root = build_tree([step], THEORY, breakdown(SHAPE, Workload.decode(1, 4)))
    assert root.name == "forward step" and root.time_ms == 10 and [c.name for c in root.children] == ["M", "logits"]

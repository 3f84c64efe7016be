"""Coarse to fine: every library module in one category, the gap split exactly, TPOT met with its decode step."""

import msgspec
import pytest

from tuibench.analysis.attribution import attribute, category_times, coarse_fine, explain
from tuibench.analysis.categories import CATEGORIES, LABELS, OTHER, OUTSIDE, category_of
from tuibench.analysis.theory import ATTENTION_CORE, LABELS as THEORY_KEYS
from tuibench.core.metrics import Stat
from tuibench.core.module_profile import ModuleNode, ModuleProfile
from tuibench.core.roofline import Cost, Roofline
from tuibench.core.spec import DatasetSpec, OfflineParams, RunSpec, ServingParams
from tuibench.profiling import hf_profile, vllm_profile
from tuibench.report.explain import reading


def test_every_theory_module_is_in_exactly_one_category():
    keys = [key for category in CATEGORIES for key in category.keys]
    assert len(keys) == len(set(keys))  # no key in two categories
    assert set(THEORY_KEYS) - set(ATTENTION_CORE) == set(keys)  # the core's parts travel as "attn_core"


@pytest.mark.parametrize("theory", [hf_profile.THEORY, vllm_profile.THEORY], ids=["transformers", "vllm"])
def test_every_module_a_library_declares_falls_in_one_category(theory):
    for name, keys in (*theory.leaves.items(), *theory.inline.items()):
        assert category_of(keys) != OTHER, name  # raises where a module's keys span two categories


def test_vllms_fused_modules_land_whole_in_the_category_of_what_they_fuse():
    expected = {"qkv_proj": "q/k/v proj", "gate_up_proj": "gate/up proj", "attn": "attention + KV write",
                "input_layernorm": "RMSNorm + residual add", "post_attention_layernorm": "RMSNorm + residual add",
                "act_fn": "SiLU·mul", "logits_processor": "LM head", "rotary_emb": "RoPE"}
    assert {name: category_of(vllm_profile.THEORY.leaves[name]) for name in expected} == expected
    # transformers keeps them apart, and each part lands in the same category as vLLM's fused module.
    for fused, parts in (("qkv_proj", ("q_proj", "k_proj", "v_proj")), ("gate_up_proj", ("gate_proj", "up_proj")),
                         ("attn", ("kv_write", "attn_core"))):
        assert {category_of(hf_profile.THEORY.leaves[p]) for p in parts} == {expected[fused]}
    assert category_of(hf_profile.THEORY.inline["layer"]) == "RMSNorm + residual add"  # the adds vLLM fuses


def test_a_module_declared_across_two_categories_is_refused():
    with pytest.raises(ValueError, match="span the categories"):
        category_of(("q_proj", "gate_proj"))


ROOFLINE = Roofline(device="test", dtype="float32", peak_flops_s=1e11, bandwidth_bytes_s=1e10)


def _leaf(name, ms, keys, cost=None, kind="module"):
    return ModuleNode(name=name, path=f"M.{name}", kind=kind, time_ms=ms, theory=keys, cost=cost)


def _profile(library, qkv_ms, attn_ms, inline_ms, wall_ms, *, fused=False, attn_bytes=4e6, phase="decode"):
    qkv_cost = Cost(flops=2e9, bytes_read=2e7)
    if fused:
        qkv = (_leaf("qkv_proj", qkv_ms, ("q_proj", "k_proj", "v_proj"), qkv_cost),)
    else:
        qkv = tuple(_leaf(n, qkv_ms / 3, (n,), msgspec.structs.replace(qkv_cost, flops=2e9 / 3, bytes_read=2e7 / 3))
                    for n in ("q_proj", "k_proj", "v_proj"))
    children = (*qkv, _leaf("attn", attn_ms, ("kv_write", "attn_core"), Cost(flops=1e6, bytes_read=attn_bytes)),
                _leaf("(inline ops)", inline_ms, (), kind="self"))
    forward_ms = qkv_ms + attn_ms + inline_ms
    root = ModuleNode(name="M", path="M", kind="step", time_ms=forward_ms, children=children)
    return ModuleProfile(library=library, phase=phase, batch=8, input_len=512, context=514.5, steps=4,
                         dtype="float32", attn="sdpa", root=root, roofline=ROOFLINE, step_wall_ms=wall_ms)


def test_the_gap_is_split_by_category_and_the_rows_sum_to_it_exactly():
    a = _profile("transformers", qkv_ms=9.0, attn_ms=20.0, inline_ms=3.0, wall_ms=33.5)
    b = _profile("vllm", qkv_ms=10.0, attn_ms=6.0, inline_ms=1.0, wall_ms=19.5, fused=True)
    result = attribute(a, b)
    rows = {row.label: row for row in result.rows}
    assert result.basis == "wall" and (result.a_step_ms, result.b_step_ms) == (33.5, 19.5)
    assert rows["q/k/v proj"].a_ms == pytest.approx(9.0) and rows["q/k/v proj"].b_ms == 10.0  # three against one
    assert rows["attention + KV write"].gap_ms == -14.0 and rows["attention + KV write"].share == pytest.approx(1.0)
    assert rows[OTHER].gap_ms == -2.0 and rows[OUTSIDE].gap_ms == pytest.approx(1.0)  # 1.5 ms outside, then 2.5
    assert sum(row.gap_ms for row in result.rows) == pytest.approx(result.gap_ms, abs=1e-12)
    assert sum(row.share for row in result.rows) == pytest.approx(1.0)
    # What one side times alone and the other fuses is shown inside its category: A's q, k and v.
    assert [(part.key, part.b_ms) for part in rows["q/k/v proj"].parts] == [("q_proj", None), ("k_proj", None),
                                                                           ("v_proj", None)]
    assert rows["attention + KV write"].parts == ()  # both fuse the KV write into their attention here
    # The same work by the theory on both sides: the attention row is the same work done faster. With its scores
    # materialised (more bytes, the same FLOPs) it is more work.
    assert rows["attention + KV write"].work == "same" and reading(rows["attention + KV write"]) == "same work, faster"
    eager = attribute(a, _profile("vllm", 10.0, 6.0, 1.0, 19.5, fused=True, attn_bytes=9e6))
    assert [reading(r) for r in eager.rows if r.label == "attention + KV write"] == ["more work"]
    # Without a measured wall on either side, the forward is the step and nothing is outside it.
    plain = attribute(msgspec.structs.replace(a, step_wall_ms=None), b)
    assert plain.basis == "forward" and plain.a_step_ms == 32.0 and OUTSIDE not in {r.label for r in plain.rows}


def test_profiles_of_two_shapes_are_not_attributed():
    a = _profile("transformers", 9.0, 20.0, 3.0, 33.5)
    with pytest.raises(ValueError, match="differ in phase"):
        attribute(a, _profile("vllm", 9.0, 20.0, 3.0, 33.5, phase="prefill"))


def test_category_times_sum_to_the_step_on_either_basis():
    profile = _profile("transformers", 9.0, 20.0, 3.0, 33.5)
    assert set(category_times(profile, "wall")) == set(LABELS)
    assert sum(category_times(profile, "wall").values()) == pytest.approx(33.5)
    assert sum(category_times(profile, "forward").values()) == pytest.approx(32.0)


def _stat(mean):
    return Stat(n=8, mean=mean, std=0.0, min=mean, max=mean, p50=mean, p90=mean, p99=mean)


class _Metrics(msgspec.Struct):
    completed: int
    input_tokens: int
    output_tokens: int
    tpot_ms: Stat | None


def test_a_static_batch_meets_the_decode_profile_of_its_batch_and_nearest_context():
    spec = RunSpec(dataset=DatasetSpec(kind="random", source="random"), offline=OfflineParams(batch_size=8))
    metrics = _Metrics(completed=8, input_tokens=8 * 500, output_tokens=8 * 32, tpot_ms=_stat(40.0))  # context 516
    near = _profile("transformers", 9.0, 20.0, 3.0, 33.5)  # context 514.5, forward 32 ms
    far = msgspec.structs.replace(near, input_len=128, context=130.5)
    found = coarse_fine("transformers", 5, spec, metrics, [(1, far), (2, near)])
    assert (found.profile_run_id, found.batch, found.context) == (2, 8, 516.0)
    assert found.overhead_ms == pytest.approx(8.0)  # 40 ms a token, 32 of them in the forward
    # Serving with many requests in flight has no fixed batch; a context far from every profile is said so.
    serving = msgspec.structs.replace(spec, scenario="serving", serving=ServingParams(max_concurrency=4))
    assert "not fixed" in coarse_fine("transformers", 5, serving, metrics, [(2, near)])
    short = _Metrics(completed=8, input_tokens=8 * 32, output_tokens=8 * 32, tpot_ms=_stat(40.0))
    assert "profile a length near it" in coarse_fine("transformers", 5, spec, short, [(2, near)])


def test_explain_pairs_the_newest_profile_of_each_shape():
    class Row(msgspec.Struct):
        id: int
        library: str
        scenario: str = "profile"
        status: str = "finished"

    old = _profile("vllm", 99.0, 99.0, 9.0, 210.0, fused=True)
    new = _profile("vllm", 10.0, 6.0, 1.0, 19.5, fused=True)
    a = _profile("transformers", 9.0, 20.0, 3.0, 33.5)
    result = explain([Row(1, "transformers")], [Row(2, "vllm"), Row(3, "vllm")], {1: [a], 2: [old], 3: [new]},
                     "transformers", "vllm")
    assert [x.b for x in result.attributions] == ["vllm · run 3"] and result.attributions[0].b_step_ms == 19.5

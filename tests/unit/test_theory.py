"""Theory: per-module FLOPs and bytes worked by hand, the paper's numbers, rooflines and the device table."""

import pytest

from tuibench.analysis.hardware import GPUS, gpu_by_key, gpu_by_nvml_name
from tuibench.analysis.paper import paper_intensity
from tuibench.analysis.theory import (
    ATTENTION_CORE, LAYER_MODULES, LINEAR_MODULES, MODEL_MODULES, ModelShape, Workload, breakdown, total,
)
from tuibench.core.errors import UserError
from tuibench.core.roofline import Cost, Roofline, ridge_point
from tuibench.core.units import fmt_si

# Small enough to work by hand: h=8, h'=16, 2 heads of 4, 1 KV head, 2 layers, vocab 10.
TINY = ModelShape(hidden=8, intermediate=16, heads=2, kv_heads=1, head_dim=4, layers=2, vocab=10)

SMOLLM2_CONFIG = {
    "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9,
    "num_key_value_heads": 3, "num_hidden_layers": 30, "vocab_size": 49152, "tie_word_embeddings": True,
    "max_position_embeddings": 8192, "head_dim": 64,
}


def test_tiny_prefill_by_hand():
    # b=1, s=3, fp32 (4 bytes). Tokens t = 3.
    costs = breakdown(TINY, Workload.prefill(batch=1, seq=3, dtype="float32"))
    layer = costs.layer
    # q: 2*t*h*(n*d) = 2*3*8*8 = 384 FLOPs; bytes: read x (3*8) + W (8*8), write (3*8): (24+64+24)*4
    assert layer["q_proj"] == Cost(flops=384, bytes_read=(24 + 64) * 4, bytes_written=24 * 4)
    # k: one KV head of 4 -> 2*3*8*4 = 192
    assert layer["k_proj"].flops == 192
    # QK^T: 2 * b*n*q*k * d = 2 * (1*2*3*3) * 4 = 144; softmax 5 per score = 90; ·V same as QK^T
    assert (layer["attn_qk"].flops, layer["attn_softmax"].flops, layer["attn_pv"].flops) == (144, 90, 144)
    # fused: Q read once (3*8), K read per sequence (3*4); nothing written by QK^T
    assert layer["attn_qk"].bytes_read == (24 + 12) * 4 and layer["attn_qk"].bytes_written == 0
    # RMSNorm: 4 FLOPs per element, reads x and the weight
    assert layer["input_norm"] == Cost(flops=4 * 24, bytes_read=(24 + 8) * 4, bytes_written=24 * 4)
    # SiLU·mul on t*h' = 48 elements: 5 FLOPs each, reads gate and up, writes one
    assert layer["act_mul"] == Cost(flops=240, bytes_read=2 * 48 * 4, bytes_written=48 * 4)
    # KV write: k and v of 3 tokens x 4 wide, read and written once
    assert layer["kv_write"] == Cost(bytes_read=2 * 12 * 4, bytes_written=2 * 12 * 4)
    # LM head on the last position only: 2*b*h*V
    assert costs.outside["lm_head"].flops == 2 * 1 * 8 * 10
    assert set(layer) == set(LAYER_MODULES) and set(costs.outside) == set(MODEL_MODULES)


def test_whole_model_is_layers_times_count_plus_the_rest():
    costs = breakdown(TINY, Workload.prefill(2, 5))
    expected = total(costs.layer.values()) * TINY.layers + total(costs.outside.values())
    assert costs.whole_model == expected
    assert costs.module("q_proj") == costs.layer["q_proj"] * 2
    assert costs.module("attn_core") == total(costs.module(k) for k in ATTENTION_CORE)


def test_eager_attention_pays_for_the_scores():
    fused = breakdown(TINY, Workload.prefill(1, 3, attn="fused")).layer
    eager = breakdown(TINY, Workload.prefill(1, 3, attn="eager")).layer
    scores_bytes = 4 * (1 * 2 * 3 * 3)  # b*n*s*s scores at 4 bytes
    assert eager["attn_qk"].bytes_written - fused["attn_qk"].bytes_written == scores_bytes
    assert eager["attn_softmax"].bytes_moved == 2 * scores_bytes
    assert eager["attn_qk"].flops == fused["attn_qk"].flops


def test_decode_attention_intensity_ignores_batch_and_linear_grows_with_it():
    shape = ModelShape.from_config(SMOLLM2_CONFIG)
    attention = [breakdown(shape, Workload.decode(b, 1024)).module("attn_core").intensity for b in (1, 8, 64)]
    linear = [total(breakdown(shape, Workload.decode(b, 1024)).module(k) for k in LINEAR_MODULES).intensity
              for b in (1, 8, 64)]
    assert max(attention) - min(attention) < 1e-9
    # Per key: 4d + 5 FLOPs for each of the 9 query heads, 2d elements of K and V for each of the 3 KV heads.
    # GQA triples the intensity of MHA; Q in and the output out add a little traffic.
    d, e = 64, 4
    assert attention[0] == pytest.approx((4 * d + 5) * 9 / (2 * d * e * 3), rel=0.01)
    assert linear[0] < linear[1] < linear[2] and linear[2] > 10 * linear[0]


def test_smollm2_config_and_parameter_count():
    shape = ModelShape.from_config(SMOLLM2_CONFIG)
    assert (shape.kv_heads, shape.head_dim, shape.tied_embeddings) == (3, 64, True)
    assert 134e6 < shape.parameters < 135e6  # SmolLM2-135M: 134.5M with tied embeddings


def test_config_without_a_field_is_refused_with_its_name():
    with pytest.raises(ValueError, match="intermediate_size"):
        ModelShape.from_config({"hidden_size": 8, "num_attention_heads": 2})


def test_qwen2_has_qkv_biases():
    config = dict(SMOLLM2_CONFIG, model_type="qwen2")
    with_bias = breakdown(ModelShape.from_config(config), Workload.decode(1, 8)).layer["q_proj"]
    without = breakdown(ModelShape.from_config(SMOLLM2_CONFIG), Workload.decode(1, 8)).layer["q_proj"]
    assert with_bias.flops - without.flops == 576  # one add per output element
    assert with_bias.bytes_read - without.bytes_read == 576 * 4


def test_papers_worked_numbers():
    b, s, h, d = 8, 1024, 4096, 128
    n = h // d
    assert paper_intensity("q_proj", "prefill", b, s, h, n) == pytest.approx(2730.7, abs=0.05)
    assert paper_intensity("attn_core", "prefill", b, s, h, n) == pytest.approx(114.7, abs=0.05)
    assert paper_intensity("q_proj", "decode", b, s, h, n) == pytest.approx(7.98, abs=0.005)
    assert paper_intensity("attn_core", "decode", b, s, h, n) == pytest.approx(1.0)


def test_a100_ridge_point_as_the_paper_computes_it():
    # The paper's 142.5 reads the datasheet's 2039 GB/s as GiB/s; in decimal bytes the ridge is 153.0.
    assert ridge_point(312e12, 2039 * 2**30) == pytest.approx(142.5, abs=0.05)
    assert gpu_by_key("a100-80gb").roofline("bfloat16").ridge == pytest.approx(153.0, abs=0.05)


def test_roofline_bound_time_and_verdict():
    roof = Roofline(device="x", dtype="float32", peak_flops_s=100.0, bandwidth_bytes_s=10.0)  # ridge 10
    memory = Cost(flops=50.0, bytes_read=10.0)  # intensity 5
    compute = Cost(flops=1000.0, bytes_read=10.0)  # intensity 100
    assert (roof.bound(memory), roof.bound(compute), roof.bound(Cost())) == ("memory", "compute", None)
    assert roof.time_s(memory) == pytest.approx(1.0) and roof.time_s(compute) == pytest.approx(10.0)
    verdict = roof.judge(compute, measured_s=20.0)
    assert verdict.roofline_pct == pytest.approx(50.0) and verdict.achieved_flops_s == pytest.approx(50.0)
    assert roof.judge(compute, None).roofline_pct is None


def test_every_gpu_has_a_source_and_sane_figures():
    for gpu in GPUS:
        assert gpu.source, gpu.key
        assert 100e9 < gpu.bandwidth_bytes_s < 10e12, gpu.key
        assert all(1e12 < peak < 5e15 for peak in gpu.peak_flops_s.values()), gpu.key


@pytest.mark.parametrize("nvml_name, key", [
    ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
    ("NVIDIA A100-SXM4-40GB", "a100-40gb"), ("NVIDIA A100 80GB PCIe", "a100-80gb-pcie"), ("Tesla T4", "t4"),
    ("NVIDIA L4", "l4"), ("NVIDIA L40S", "l40s"), ("NVIDIA GeForce RTX 4090", "rtx4090"), ("NVIDIA H200", "h200"),
    ("Tesla V100-SXM2-32GB", "v100"), ("NVIDIA A10G", "a10g"),
])
def test_gpu_found_by_its_nvml_name(nvml_name, key):
    assert gpu_by_nvml_name(nvml_name).key == key


def test_unknown_gpu_and_dtype():
    assert gpu_by_nvml_name("NVIDIA GeForce GT 710") is None
    with pytest.raises(UserError, match="not a known device"):
        gpu_by_key("tpu-v5")
    with pytest.raises(UserError, match="no bfloat16"):
        gpu_by_key("t4").roofline("bfloat16")


def test_the_names_users_type_for_a_gpu_resolve_to_the_usual_card():
    assert gpu_by_key("a100").name == "NVIDIA A100 SXM4 80GB" and gpu_by_key("A100").key == "a100-80gb"
    assert gpu_by_key("h100").name == "NVIDIA H100 SXM5 80GB"
    with pytest.raises(UserError, match="not a known device"):
        gpu_by_key("tpu-v5")


def test_analyze_tables_show_one_layer_when_asked_and_sweep_the_asked_batch():
    from rich.console import Console

    from tuibench.report.module_tables import intensity_sweep_table, theory_table

    shape = ModelShape.from_config(SMOLLM2_CONFIG)
    costs = breakdown(shape, Workload.decode(16, 1024))

    def text(table) -> str:
        console = Console(width=200, record=True)
        console.print(table)
        return console.export_text()

    summed, one = text(theory_table(costs, None)), text(theory_table(costs, None, per_layer=True))
    assert "q proj (×L)" in summed and "q proj (1 layer)" in one and "one layer of 30" in one
    q_proj = costs.module("q_proj")
    assert fmt_si(q_proj.flops) in summed and fmt_si(q_proj.flops / 30) in one
    assert "lm head" in one.lower()  # the model's own modules stay whole
    rows = [line.split()[0] for line in text(intensity_sweep_table(shape, 1024, "bfloat16", "fused", None,
                                                                   batch=16)).splitlines()[2:]]
    assert rows == ["1", "8", "16", "32", "128", "512"]  # --batch 16 among the swept sizes

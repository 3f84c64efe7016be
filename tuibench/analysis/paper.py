"""The paper's asymptotic forms (Chen et al., arXiv 2404.11502): arithmetic intensity as O(FLOPs)/O(bytes).

They drop constants and the dtype, so they are for orders of magnitude and trends: set beside the
exact counts of `theory`, they show the same picture (decode attention stays near 1 FLOP/byte
whatever the batch; linear layers grow with it). b: batch, s: input or context length, h: hidden
size, n: heads.
"""

from collections.abc import Callable

import msgspec

from tuibench.analysis.theory import Phase


class PaperForm(msgspec.Struct, frozen=True):
    flops: str
    memory: str
    intensity: Callable[[int, int, int, int], float]  # (b, s, h, n) -> FLOPs per byte


_FORMS: dict[tuple[str, Phase], PaperForm] = {
    ("linear", "prefill"): PaperForm("O(bsh²)", "O(bsh + h²)", lambda b, s, h, n: b * s * h * h / (b * s * h + h * h)),
    ("linear", "decode"): PaperForm("O(bh²)", "O(bh + h²)", lambda b, s, h, n: b * h * h / (b * h + h * h)),
    ("attention", "prefill"): PaperForm(
        "O(bs²h + bns²)", "O(bsh + bns²)", lambda b, s, h, n: (b * s * s * h + b * n * s * s) / (b * s * h + b * n * s * s)
    ),
    ("attention", "decode"): PaperForm(
        "O(bsh + bns)", "O(bsh + bns)", lambda b, s, h, n: (b * s * h + b * n * s) / (b * s * h + b * n * s)
    ),
    ("elementwise", "prefill"): PaperForm("O(bsh)", "O(bsh)", lambda b, s, h, n: 1.0),
    ("elementwise", "decode"): PaperForm("O(bh)", "O(bh)", lambda b, s, h, n: 1.0),
}

# Which form each module of `theory` follows.
FAMILY = {
    "q_proj": "linear", "k_proj": "linear", "v_proj": "linear", "o_proj": "linear", "gate_proj": "linear",
    "up_proj": "linear", "down_proj": "linear", "lm_head": "linear",
    "attn_core": "attention", "attn_qk": "attention", "attn_softmax": "attention", "attn_pv": "attention",
    "input_norm": "elementwise", "post_norm": "elementwise", "final_norm": "elementwise", "rope": "elementwise",
    "act_mul": "elementwise", "attn_residual": "elementwise", "mlp_residual": "elementwise",
    "kv_write": "elementwise", "embed": "elementwise",
}


def paper_form(module: str, phase: Phase) -> PaperForm | None:
    family = FAMILY.get(module)
    return _FORMS[(family, phase)] if family else None


def paper_intensity(module: str, phase: Phase, batch: int, seq: int, hidden: int, heads: int) -> float | None:
    form = paper_form(module, phase)
    return form.intensity(batch, seq, hidden, heads) if form else None

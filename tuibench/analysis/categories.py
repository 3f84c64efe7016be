"""The categories any two libraries' module trees are compared by, declared once beside the theory.

A library fuses what another keeps apart: vLLM's `qkv_proj` is q, k and v; its `gate_up_proj` is gate and up;
its RMSNorm adds the residual first; its `Attention` writes the KV cache and runs the attention core. Each
library's driver declares what every module of it computes, as theory keys (profiling/hf_profile.py and
vllm_profile.py: THEORY). A category here is a set of theory keys closed under every such fusion, so each
module of each library falls in exactly one category, and two trees line up category by category. The residual
adds share the norms' category because vLLM fuses them into its norms; transformers runs them inline in the
decoder layer, and its `(inline: residual add)` node lands there too.

`category_of` is strict: a module whose keys span two categories is a declaration error, raised, never split.
"""

from collections.abc import Iterable

import msgspec


class Category(msgspec.Struct, frozen=True):
    label: str
    keys: frozenset[str]  # theory keys (analysis.theory); "attn_core" stands for the attention core's parts


CATEGORIES: tuple[Category, ...] = (
    Category("embedding", frozenset({"embed"})),
    Category("RMSNorm + residual add", frozenset({"input_norm", "post_norm", "final_norm", "attn_residual",
                                                  "mlp_residual"})),
    Category("q/k/v proj", frozenset({"q_proj", "k_proj", "v_proj"})),
    Category("RoPE", frozenset({"rope"})),
    Category("attention + KV write", frozenset({"attn_core", "kv_write"})),
    Category("o proj", frozenset({"o_proj"})),
    Category("gate/up proj", frozenset({"gate_proj", "up_proj"})),
    Category("SiLU·mul", frozenset({"act_mul"})),
    Category("down proj", frozenset({"down_proj"})),
    Category("LM head", frozenset({"lm_head"})),
)
# Time in no declared module: what modules run between their children that theory has no name for (reshapes,
# transposes, copies, casts), and, where the step's wall is known, everything outside the forward (sampling,
# logits processing, the scheduler, Python between the model's calls).
OTHER = "inline ops (reshapes, copies)"
OUTSIDE = "outside the forward"
LABELS: tuple[str, ...] = (*(c.label for c in CATEGORIES), OTHER, OUTSIDE)

_BY_KEY = {key: category.label for category in CATEGORIES for key in category.keys}


def category_of(keys: Iterable[str]) -> str:
    """The one category `keys` (a module's theory) fall in; OTHER for none. ValueError where they span two."""
    found = {_BY_KEY.get(key) for key in keys} - {None}
    if len(found) > 1:
        raise ValueError(f"theory keys {sorted(keys)} span the categories {sorted(found)}: declare the module "
                         "in one, or join the categories")
    return found.pop() if found else OTHER

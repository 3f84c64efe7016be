"""Architecture-only models: a shipped config.json and nothing else, run with random weights.

They let every user reproduce the paper's model shapes (LLaMA-2-7B …) with no weight download and no
hub: the timings of a forward pass do not depend on what the weights hold, its outputs do. Each config
holds the fields of its model's published config.json (`source`) that fix the shapes and the runtime
(sizes, heads, layers, vocabulary, RoPE, special token ids); `tiny-llama` is ours, a toy LLaMA for
CPUs and tests.
"""

from pathlib import Path

import msgspec

CONFIGS = Path(__file__).parent / "configs"


class Architecture(msgspec.Struct, frozen=True, kw_only=True):
    alias: str
    source: str  # where its config.json comes from
    note: str  # why it is shipped

    @property
    def config_path(self) -> Path:
        return CONFIGS / f"{self.alias}.json"


def _hf(repo: str) -> str:
    return f"https://huggingface.co/{repo}/blob/main/config.json"


ARCHITECTURES: dict[str, Architecture] = {a.alias: a for a in (
    Architecture(alias="llama-2-7b", source=_hf("meta-llama/Llama-2-7b-hf"), note="the paper's main model"),
    Architecture(alias="llama-2-13b", source=_hf("meta-llama/Llama-2-13b-hf"), note="the paper's larger model"),
    Architecture(alias="vicuna-7b-16k", source=_hf("lmsys/vicuna-7b-v1.5-16k"),
                 note="the paper's short-16k model: LLaMA-2-7B with linear RoPE scaling ×4 (16k context)"),
    Architecture(alias="llama-3-8b", source=_hf("meta-llama/Meta-Llama-3-8B"), note="GQA 32/8, a 128k vocabulary"),
    Architecture(alias="mistral-7b", source=_hf("mistralai/Mistral-7B-v0.1"), note="GQA 32/8, sliding window 4096"),
    Architecture(alias="qwen2-7b", source=_hf("Qwen/Qwen2-7B"), note="GQA 28/4, QKV bias, a 152k vocabulary"),
    Architecture(alias="tiny-llama", source="tuibench",
                 note="2 layers of width 256, heads of 64: the random-weights path on a CPU"),
)}


def context_tokens(config: dict) -> int | None:
    """The longest context of a config.json: the positions it was trained on, times a linear RoPE scaling's factor
    (Vicuna-7B-16k: 4096 × 4)."""
    positions = config.get("max_position_embeddings")
    if positions is None:
        return None
    scaling = config.get("rope_scaling") or config.get("rope_parameters") or {}  # the name in transformers 5
    linear = (scaling.get("type") or scaling.get("rope_type")) == "linear"
    return int(positions * float(scaling.get("factor", 1.0))) if linear else int(positions)

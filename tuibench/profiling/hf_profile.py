"""Per-module timing of a transformers model: one prefill and a few decode steps per input length.

Every nn.Module is timed (profiling/timer.py). Three things are functions, not modules, in current transformers
and are wrapped where the model looks them up, for the duration of the profile: the attention core
(the function registered for the model's attention implementation; the mask registry under the same
name is left alone), RoPE (`apply_rotary_pos_emb` in the model's modeling module) and the KV-cache
write (`update` of the cache we hand the model).
"""

import sys
import time
from collections.abc import Sequence

from tuibench.analysis.theory import ModelShape, Workload
from tuibench.core.errors import UserError
from tuibench.core.module_profile import TimerMode
from tuibench.core.roofline import Roofline
from tuibench.profiling.passes import Phase, Wall
from tuibench.profiling.steps import StepTimes
from tuibench.profiling.timer import ModuleTimer
from tuibench.profiling.tree import TheoryMap

THEORY = TheoryMap(
    leaves={
        "embed_tokens": ("embed",), "input_layernorm": ("input_norm",), "q_proj": ("q_proj",),
        "k_proj": ("k_proj",), "v_proj": ("v_proj",), "rope": ("rope",), "kv_write": ("kv_write",),
        "attn_core": ("attn_core",), "o_proj": ("o_proj",), "post_attention_layernorm": ("post_norm",),
        "gate_proj": ("gate_proj",), "up_proj": ("up_proj",), "down_proj": ("down_proj",),
        # SiLU is the module; its ·up runs inline in the MLP, so the module carries the fused op's theory.
        "act_fn": ("act_mul",), "norm": ("final_norm",), "lm_head": ("lm_head",),
    },
    inline={"layer": ("attn_residual", "mlp_residual")},  # the two residual adds of a decoder layer
)


class _Patched:
    """Wraps the attention core and RoPE for as long as the profile runs; restores them after."""

    def __init__(self, model, timer: ModuleTimer):
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        self._registry = ALL_ATTENTION_FUNCTIONS
        self._impl = model.config._attn_implementation
        modeling = sys.modules[type(model).__module__]
        if not hasattr(modeling, "apply_rotary_pos_emb"):
            raise UserError(f"{type(model).__name__} has no apply_rotary_pos_emb: module profiles cover LLaMA-family "
                            "models (LLaMA, Mistral, Qwen2, SmolLM)")
        timer.patch(modeling, "apply_rotary_pos_emb", "rope")
        if self._impl == "eager":
            timer.patch(modeling, "eager_attention_forward", "attn_core")  # passed as the default, looked up per call
            self._original = None
        else:
            self._original = self._registry[self._impl]
            self._registry[self._impl] = timer.wrap("attn_core", self._original)

    def restore(self) -> None:
        if self._original is not None:
            self._registry[self._impl] = self._original


def instrument(model, mode: TimerMode = "events") -> tuple[ModuleTimer, _Patched]:
    """A timer on every module of `model`, the attention core and RoPE wrapped. Undo with restore, detach."""
    timer = ModuleTimer(cuda=model.device.type == "cuda", mode=mode)
    timer.attach(model, prefix=type(model).__name__)
    return timer, _Patched(model, timer)


class HfPasses:
    """A transformers model's passes for the profile scenario (profiling/passes.py): one prefill and the decode steps
    of a batch through the model's forward, the inputs of a length drawn once for all its passes."""

    library = "transformers"
    theory = THEORY

    def __init__(self, model, *, batch: int, decode_steps: int, token_ids: Sequence[int], seed: int,
                 roofline: Roofline | None = None):
        import torch

        self.model, self.batch, self.decode_steps, self.roofline = model, batch, decode_steps, roofline
        self.device = str(model.device)
        self.config = model.config.to_dict()
        self.shape = ModelShape.from_config(self.config)
        self.dtype = str(model.dtype).removeprefix("torch.")
        self.attn = model.config._attn_implementation
        self._generator = torch.Generator().manual_seed(seed)
        self._pool = torch.tensor(list(token_ids))
        self._ids = None

    def workload(self, phase: Phase, length: int) -> Workload:
        attn = "eager" if self.attn == "eager" else "fused"
        if phase == "prefill":
            return Workload.prefill(self.batch, length, self.dtype, attn)
        return Workload.decode(self.batch, length + (self.decode_steps + 1) / 2, self.dtype, attn)

    def begin(self, length: int) -> None:
        import torch

        pool = self._pool
        drawn = torch.randint(len(pool), (self.batch, length), generator=self._generator)
        self._ids = pool[drawn].to(self.model.device)

    def bare(self, length: int) -> list[Wall]:
        return _tagged(run_steps(self.model, self._ids, self.decode_steps))

    def timed(self, length: int, mode: TimerMode) -> tuple[list[StepTimes], list[Wall]]:
        timer, patched = instrument(self.model, mode)
        try:
            with timer.recording():
                walls = run_steps(self.model, self._ids, self.decode_steps, timer)
        finally:
            patched.restore()
            timer.detach()
        return timer.steps, _tagged(walls)

    def close(self) -> None:
        pass


def _tagged(walls: list[float]) -> list[Wall]:
    """run_steps' walls with their phases: the first step is the prefill."""
    return [("prefill" if step == 0 else "decode", wall) for step, wall in enumerate(walls)]


def run_steps(model, input_ids, decode_steps: int, timer: ModuleTimer | None = None) -> list[float]:
    """One prefill and `decode_steps` greedy decode steps; the wall seconds of each.

    With a timer each forward is one of its steps, and the cache's KV write is timed too.
    """
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    if timer is not None:
        cache.update = timer.wrap("kv_write", cache.update)
    sync = torch.cuda.synchronize if input_ids.device.type == "cuda" else (lambda: None)
    tokens, walls = input_ids, []
    with torch.inference_mode():
        for step in range(1 + decode_steps):
            if timer is not None:
                timer.begin_step("prefill" if step == 0 else "decode")
            start = time.perf_counter()
            logits = model(input_ids=tokens, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
            tokens = logits[:, -1:].argmax(-1)  # greedy, as a benchmark's decode would
            sync()
            walls.append(time.perf_counter() - start)
    if timer is not None:
        timer.end_step()
    return walls

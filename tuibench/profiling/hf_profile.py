"""Per-module timing of a transformers model: one prefill and a few decode steps per input length.

Every nn.Module is timed (profiling/timer.py). Three things are functions, not modules, in current transformers
and are wrapped where the model looks them up, for the duration of the profile: the attention core
(the function registered for the model's attention implementation; the mask registry under the same
name is left alone), RoPE (`apply_rotary_pos_emb` in the model's modeling module) and the KV-cache
write (`update` of the cache we hand the model).
"""

import sys
import time
from collections.abc import Callable, Sequence

import msgspec

from tuibench.analysis.theory import ModelShape, Workload
from tuibench.core.errors import UserError
from tuibench.core.modules import ModuleProfile, TimerMode
from tuibench.core.roofline import Roofline
from tuibench.profiling.timer import ModuleTimer
from tuibench.profiling.tree import TheoryMap, on_off, profile_from_steps

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


def profile_model(model, *, lengths: Sequence[int], batch: int, decode_steps: int, repeats: int,
                  token_ids: Sequence[int], seed: int, roofline: Roofline | None, timer_mode: TimerMode = "events",
                  emit: Callable[[ModuleProfile], None], progress: Callable[[int, int], None] = lambda d, t: None) -> None:
    """Profiles `model` at each input length; emits a prefill and a decode profile per length."""
    import torch

    device = model.device
    shape = ModelShape.from_config(model.config.to_dict())
    dtype = str(model.dtype).removeprefix("torch.")
    attn = "eager" if model.config._attn_implementation == "eager" else "fused"
    generator = torch.Generator().manual_seed(seed)
    pool = torch.tensor(list(token_ids))

    with torch.inference_mode():
        for done, length in enumerate(lengths):
            ids = pool[torch.randint(len(pool), (batch, length), generator=generator)].to(device)
            run_steps(model, ids, decode_steps)  # warm-up: kernels chosen, memory allocated
            steps, timed_walls, bare_walls = [], [], []
            for _ in range(repeats):  # timed and bare passes alternate, so drift falls on both
                timer, patched = instrument(model, timer_mode)
                try:
                    with timer.recording():
                        timed_walls.append(run_steps(model, ids, decode_steps, timer))
                finally:
                    patched.restore()
                    timer.detach()
                steps += timer.steps
                bare_walls.append(run_steps(model, ids, decode_steps))
            for phase, work, pick in (
                ("prefill", Workload.prefill(batch, length, dtype, attn), slice(0, 1)),
                ("decode", Workload.decode(batch, length + (decode_steps + 1) / 2, dtype, attn), slice(1, None)),
            ):
                chosen = [s for s in steps if s.tag == phase]
                if chosen:
                    profile = profile_from_steps(chosen, library="transformers", input_len=length, work=work,
                                                 shape=shape, attn=model.config._attn_implementation,
                                                 roofline=roofline, theory=THEORY)
                    emit(msgspec.structs.replace(profile, timer=timer_mode, timer_on_off=on_off(
                        [w for walls in timed_walls for w in walls[pick]],
                        [w for walls in bare_walls for w in walls[pick]])))
            progress(done + 1, len(lengths))


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

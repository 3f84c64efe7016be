"""Per-module timing inside vLLM: hooks on the model its (in-process, eager) model runner holds.

vLLM fuses what transformers keeps apart, so its leaves cover several theory modules each: one
qkv_proj, one gate_up_proj, SiluAndMul, RMSNorms that add the residual first, and an Attention layer
that writes the KV cache and runs the attention core in custom ops (opaque to hooks: timed as one).
The LM head runs after the forward, through the logits processor, so a step is the model's forward
plus that call. Each engine step is one forward; a step with more tokens than sequences is the
prefill (all prompts fit one step: the token budget is set to batch x length).
"""

import random
from collections.abc import Callable, Sequence

import msgspec

from tuibench.analysis.theory import ModelShape, Workload
from tuibench.core.modules import ModuleProfile, TimerMode
from tuibench.core.roofline import Roofline
from tuibench.profiling.timer import ModuleTimer
from tuibench.profiling.tree import TheoryMap, on_off, profile_from_steps

THEORY = TheoryMap(leaves={
    "embed_tokens": ("embed",),
    # Fused add + RMSNorm: layer i's input norm first adds layer i-1's MLP output (layer 0 adds nothing
    # and the final norm adds the last layer's; the totals over the model are the same).
    "input_layernorm": ("mlp_residual", "input_norm"),
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),
    "rotary_emb": ("rope",),
    "attn": ("kv_write", "attn_core"),
    "o_proj": ("o_proj",),
    "post_attention_layernorm": ("attn_residual", "post_norm"),
    "gate_up_proj": ("gate_proj", "up_proj"),
    "act_fn": ("act_mul",),
    "down_proj": ("down_proj",),
    "norm": ("final_norm",),
    "logits_processor": ("lm_head",),
})


def runner_model(llm):
    """The nn.Module vLLM runs (in-process engine, V1)."""
    return llm.llm_engine.engine_core.engine_core.model_executor.driver_worker.worker.model_runner.model


def watch_steps(model, batch: int, begin: Callable[[str], None]):
    """Calls `begin("prefill" | "decode")` as each engine step's forward starts (a hook handle: remove it). A step
    with more tokens than sequences is the prefill: all prompts fit one step."""

    def classify(module, args, kwargs) -> None:
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        tokens = input_ids.shape[0] if input_ids is not None else kwargs["inputs_embeds"].shape[0]
        begin("prefill" if tokens > batch else "decode")

    return model.register_forward_pre_hook(classify, with_kwargs=True)


def profile_llm(llm, *, lengths: Sequence[int], batch: int, decode_steps: int, repeats: int, token_ids: Sequence[int],
                seed: int, dtype: str, config: dict, roofline: Roofline | None, cuda: bool,
                emit: Callable[[ModuleProfile], None], timer_mode: TimerMode = "events",
                progress: Callable[[int, int], None] = lambda d, t: None) -> None:
    """Per length: a warm-up, then `repeats` timed passes alternating with bare ones. Both kinds of pass see the
    engine's steps (one pre-hook on the model starts each), so the step's wall with the timer on and off is known."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    model = runner_model(llm)
    clock = ModuleTimer(cuda=cuda)  # nothing attached: the wall of each step of a bare pass
    current = clock
    handle = watch_steps(model, batch, lambda tag: current.begin_step(tag))  # before any timer's hooks: runs first
    shape = ModelShape.from_config(config)
    rng = random.Random(seed)
    sampling = SamplingParams(max_tokens=1 + decode_steps, ignore_eos=True, temperature=0.0)

    def run(timer: ModuleTimer, length: int) -> None:
        nonlocal current
        current = timer
        try:
            # Fresh ids every time: a prompt seen before would be served from the prefix cache if one were on.
            prompts = [TokensPrompt(prompt_token_ids=rng.choices(token_ids, k=length)) for _ in range(batch)]
            with timer.recording():
                llm.generate(prompts, sampling, use_tqdm=False)
        finally:
            current = clock

    try:
        for done, length in enumerate(lengths):
            run(ModuleTimer(cuda=cuda), length)  # warm-up
            steps, bare = [], []
            for _ in range(repeats):
                timer = ModuleTimer(cuda=cuda, mode=timer_mode)
                timer.attach(model, prefix=type(model).__name__)
                try:
                    run(timer, length)
                finally:
                    timer.detach()
                steps += timer.steps
                clock.steps.clear()
                run(clock, length)
                bare += clock.steps
            for phase, work in (
                ("prefill", Workload.prefill(batch, length, dtype)),
                ("decode", Workload.decode(batch, length + (decode_steps + 1) / 2, dtype)),
            ):
                chosen = [s for s in steps if s.tag == phase]
                if chosen:
                    profile = profile_from_steps(chosen, library="vllm", input_len=length, work=work, shape=shape,
                                                 attn="vllm", roofline=roofline, theory=THEORY)
                    emit(msgspec.structs.replace(profile, timer=timer_mode, timer_on_off=on_off(
                        [s.wall_ns for s in chosen], [s.wall_ns for s in bare if s.tag == phase])))
            progress(done + 1, len(lengths))
    finally:
        handle.remove()

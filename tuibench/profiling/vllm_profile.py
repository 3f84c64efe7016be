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

from tuibench.analysis.theory import ModelShape, Workload
from tuibench.core.module_profile import TimerMode
from tuibench.core.roofline import Roofline
from tuibench.profiling.passes import Phase, Wall
from tuibench.profiling.steps import StepTimes
from tuibench.profiling.timer import ModuleTimer
from tuibench.profiling.tree import TheoryMap

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


class VllmPasses:
    """The passes of vLLM's in-process engine for the profile scenario (profiling/passes.py). One pre-hook on the
    model, on for as long as the profile runs, starts each engine step of every pass, timed or bare, so the step's
    wall with the timer on and off is known. Every pass draws fresh prompts: one seen before would be served from
    the prefix cache if one were on."""

    library = "vllm"
    attn = "vllm"
    theory = THEORY

    def __init__(self, llm, *, batch: int, decode_steps: int, token_ids: Sequence[int], seed: int, dtype: str,
                 config: dict, cuda: bool, roofline: Roofline | None = None):
        from vllm import SamplingParams

        self.llm, self.batch, self.decode_steps, self.dtype, self.config = llm, batch, decode_steps, dtype, config
        self.cuda, self.roofline, self._token_ids = cuda, roofline, token_ids
        self.device = "cuda" if cuda else "cpu"
        self.shape = ModelShape.from_config(config)
        self._model = runner_model(llm)
        self._clock = ModuleTimer(cuda=cuda)  # nothing attached: the wall of each step of a bare pass
        self._current = self._clock
        # Before any timer's hooks: runs first.
        self._handle = watch_steps(self._model, batch, lambda tag: self._current.begin_step(tag))
        self._rng = random.Random(seed)
        self._sampling = SamplingParams(max_tokens=1 + decode_steps, ignore_eos=True, temperature=0.0)

    def workload(self, phase: Phase, length: int) -> Workload:
        if phase == "prefill":
            return Workload.prefill(self.batch, length, self.dtype)
        return Workload.decode(self.batch, length + (self.decode_steps + 1) / 2, self.dtype)

    def begin(self, length: int) -> None:
        pass  # fresh prompts every pass

    def _run(self, timer: ModuleTimer, length: int) -> None:
        from vllm.inputs import TokensPrompt

        self._current = timer
        try:
            prompts = [TokensPrompt(prompt_token_ids=self._rng.choices(self._token_ids, k=length))
                       for _ in range(self.batch)]
            with timer.recording():
                self.llm.generate(prompts, self._sampling, use_tqdm=False)
        finally:
            self._current = self._clock

    def bare(self, length: int) -> list[Wall]:
        self._clock.steps.clear()
        self._run(self._clock, length)
        return [(s.tag, s.wall_ns) for s in self._clock.steps]

    def timed(self, length: int, mode: TimerMode) -> tuple[list[StepTimes], list[Wall]]:
        timer = ModuleTimer(cuda=self.cuda, mode=mode)
        timer.attach(self._model, prefix=type(self._model).__name__)
        try:
            self._run(timer, length)
        finally:
            timer.detach()
        return timer.steps, [(s.tag, s.wall_ns) for s in timer.steps]

    def close(self) -> None:
        self._handle.remove()

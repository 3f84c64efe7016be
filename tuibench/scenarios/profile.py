"""The profile scenario: per-module timing, per input length a prefill and a decode profile.

The engine loads for module timing and runs one pass of its steps when asked (profiling/passes.py); here, per
length, a warm-up pass (kernels chosen, memory allocated), then timed and bare passes alternating, so that drift
falls on both and the step's wall with the timer on and off is known; then each phase's profile, with the theory of
its workload on every module, sent with the timer's cost on it.
"""

from collections.abc import Callable, Sequence

import msgspec

from tuibench.backends.engine import Backend
from tuibench.core.context import Context
from tuibench.core.errors import UserError
from tuibench.core.module_profile import ModuleProfile, TimerMode
from tuibench.core.spec import ProfileParams
from tuibench.profiling.passes import StepPasses
from tuibench.profiling.tree import on_off, profile_from_steps

PHASES = ("prefill", "decode")


def run(engine: Backend, ctx: Context) -> None:
    spec, params = ctx.spec, ctx.spec.profile
    ctx.phase("loading", ctx.model.name)
    check_profile_lengths(params, engine.model_config(ctx), ctx.model.name)
    passes = engine.profiler(ctx)
    try:
        roofline = passes.roofline.device if passes.roofline else "none (device not in the table)"
        ctx.log(f"profiling {ctx.model.name} with {passes.library} on {passes.device} as {passes.dtype}, attention "
                f"{passes.attn}; roofline: {roofline}")
        ctx.phase("measuring", f"lengths {', '.join(map(str, params.lengths))}, batch {params.batch_size}")
        measure(passes, lengths=params.lengths, repeats=params.repeats, timer_mode=params.timer,
                emit=ctx.module_timings, progress=lambda done, total: ctx.progress("measuring", done, total))
    finally:
        passes.close()


def measure(passes: StepPasses, *, lengths: Sequence[int], repeats: int, timer_mode: TimerMode = "events",
            emit: Callable[[ModuleProfile], None], progress: Callable[[int, int], None] = lambda d, t: None) -> None:
    """Profiles at each input length; emits a prefill and a decode profile per length."""
    for done, length in enumerate(lengths):
        passes.begin(length)
        passes.bare(length)  # warm-up: kernels chosen, memory allocated
        steps, timed_walls, bare_walls = [], [], []
        for _ in range(repeats):  # timed and bare passes alternate, so drift falls on both
            timed_steps, walls = passes.timed(length, timer_mode)
            steps += timed_steps
            timed_walls += walls
            bare_walls += passes.bare(length)
        for phase in PHASES:
            chosen = [s for s in steps if s.tag == phase]
            if chosen:
                profile = profile_from_steps(chosen, library=passes.library, input_len=length,
                                             work=passes.workload(phase, length), shape=passes.shape,
                                             attn=passes.attn, roofline=passes.roofline, theory=passes.theory)
                emit(msgspec.structs.replace(profile, timer=timer_mode, timer_on_off=on_off(
                    [wall for tag, wall in timed_walls if tag == phase],
                    [wall for tag, wall in bare_walls if tag == phase])))
        progress(done + 1, len(lengths))


def check_profile_lengths(params: ProfileParams, config: dict, model_name: str) -> None:
    from tuibench.models.architectures import context_tokens

    max_positions = context_tokens(config)
    needed = max(params.lengths) + params.decode_steps
    if max_positions and needed > max_positions:
        raise UserError(f"--lengths up to {max(params.lengths)} plus {params.decode_steps} decode steps need {needed} "
                        f"positions but {model_name} has {max_positions}: use shorter lengths")

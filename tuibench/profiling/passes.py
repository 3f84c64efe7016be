"""What an engine loaded for module timing does: one pass at a time, which the profile scenario orders.

A pass runs the profile's batch of prompts of one input length through one prefill step and its decode steps. The
scenario (scenarios/profile.py) runs, per length, a warm-up pass, then timed and bare passes alternating (so drift
falls on both), and builds, checks and sends each phase's profile. Each engine's passes live beside its hooks:
hf_profile.HfPasses, vllm_profile.VllmPasses, and the fake engine's scripted ones.
"""

from typing import Literal, Protocol

from tuibench.analysis.theory import ModelShape, Workload
from tuibench.core.module_profile import TimerMode
from tuibench.core.roofline import Roofline
from tuibench.profiling.steps import StepTimes
from tuibench.profiling.tree import TheoryMap

Phase = Literal["prefill", "decode"]
# One step of a pass: its phase and its wall time. The unit is the engine's own (seconds, nanoseconds): only the
# ratio of timed to bare walls of one engine is read.
Wall = tuple[str, float]


class StepPasses(Protocol):
    library: str  # as the profile names it
    batch: int  # prompts per pass
    decode_steps: int  # after each pass's prefill
    device: str  # where it computes, in words ("cpu", "cuda:0")
    dtype: str
    attn: str  # the attention implementation that ran, as the profile names it
    shape: ModelShape
    config: dict  # the model's config: its context length bounds the lengths
    theory: TheoryMap  # how its modules map onto the theory's
    roofline: Roofline | None

    def workload(self, phase: Phase, length: int) -> Workload:
        """The theory's workload of one step of `phase` at `length` (decode: at the mean context of its steps)."""

    def begin(self, length: int) -> None:
        """Before the passes of one length: inputs an engine keeps for all of them are drawn here."""

    def bare(self, length: int) -> list[Wall]:
        """A pass with nothing timed but each step's wall (a warm-up is one)."""

    def timed(self, length: int, mode: TimerMode) -> tuple[list[StepTimes], list[Wall]]:
        """A pass with every module timed: the timer's steps, and each step's wall."""

    def close(self) -> None:
        """Takes off whatever stays on the engine between passes."""

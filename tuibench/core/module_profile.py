"""A measured per-module profile: the timing tree of one phase, each node with its theory.

This is what the child sends (in a ModuleTimings event), the store keeps and the app shows. Derived
figures (share, intensity, bound, achieved FLOP/s, % of roofline) are computed from it on demand,
never stored twice.
"""

from typing import Literal

import msgspec

from tuibench.core.roofline import Cost, Roofline, Verdict

NodeKind = Literal["step", "module", "function", "self", "layers"]
TimerMode = Literal["events", "trace"]


class ModuleNode(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # what the user reads: "q_proj", "attention core", "layers ×30", "(inline ops)"
    path: str  # where it sits in the model: "model.layers.3.self_attn.q_proj"
    kind: NodeKind
    time_ms: float  # per step, inclusive of its children
    calls: float = 1.0  # per step
    theory: tuple[str, ...] = ()  # the theory modules (analysis.theory keys) this node covers
    cost: Cost | None = None  # their summed cost; None where theory has nothing to say
    children: tuple["ModuleNode", ...] = ()
    layers: tuple["ModuleNode", ...] = ()  # a "layers" node: the same subtree for each layer, in order

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def is_leaf(self) -> bool:
        return not self.children


class Books(msgspec.Struct, frozen=True, kw_only=True):
    """One step's wall time, accounted for: leaves + inline + outside = wall.

    Leaves are the named modules and wrapped functions; inline, the time modules spend outside their children
    (residual adds, reshapes); outside, the wall less the timed forward: sampling, logits processing, the
    scheduler, Python between the model's calls. On a GPU the modules' times are device time and the wall is the
    host's (the step ends in a synchronisation), so outside also holds launch gaps, and is negative if kernels
    overlapped what the host did before it synchronised: it is shown as it comes, never clamped.
    """

    leaves_ms: float
    inline_ms: float
    outside_ms: float
    wall_ms: float

    @property
    def leaves_share(self) -> float:
        return self.leaves_ms / self.wall_ms if self.wall_ms > 0 else 0.0


class ModuleProfile(msgspec.Struct, frozen=True, kw_only=True):
    library: str
    phase: Literal["prefill", "decode"]
    batch: int
    input_len: int
    context: float  # keys attended per query token (decode: the mean over the measured steps)
    steps: int  # forward passes averaged
    dtype: str
    attn: str  # the attention implementation that ran ("sdpa", "eager", vLLM's backend)
    root: ModuleNode
    roofline: Roofline | None = None
    # What timing cost: the step's wall time with the timer on over the same step with it off, in alternating
    # passes (median of each). None: not measured.
    timer_on_off: float | None = None
    # How modules were timed: "events" (a clock or CUDA event pair per call) or "trace" (torch.profiler ranges,
    # device time attributed by the trace afterwards).
    timer: TimerMode = "events"
    # The mean step's wall time, the forward and what runs around it (sampling, logits processing, the scheduler).
    # None: not measured (profiles stored before it was).
    step_wall_ms: float | None = None

    @property
    def step_ms(self) -> float:
        return self.root.time_ms

    @property
    def attributed_ms(self) -> float:
        """Time inside named modules and wrapped functions: the leaves, less inline ops between them."""
        return sum(node.time_ms for node in self.root.walk() if node.is_leaf and node.kind != "self")

    @property
    def books(self) -> "Books | None":
        """The step's wall time, accounted for; None where the wall was not measured."""
        if self.step_wall_ms is None:
            return None
        leaves_ms = self.attributed_ms
        return Books(leaves_ms=leaves_ms, inline_ms=self.step_ms - leaves_ms, outside_ms=self.step_wall_ms - self.step_ms,
                     wall_ms=self.step_wall_ms)

    @property
    def coverage(self) -> float:
        return self.attributed_ms / self.step_ms if self.step_ms > 0 else 0.0

    def verdict(self, node: ModuleNode) -> Verdict | None:
        if node.cost is None or self.roofline is None:
            return None
        return self.roofline.judge(node.cost, node.time_ms / 1000.0)

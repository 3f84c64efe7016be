"""A measured per-module profile: the timing tree of one phase, each node with its theory.

This is what the child sends (in a ModuleTimings event), the store keeps and the app shows. Derived
figures (share, intensity, bound, achieved FLOP/s, % of roofline) are computed from it on demand,
never stored twice.
"""

from typing import Literal

import msgspec

from tuibench.core.roofline import Cost, Roofline, Verdict

NodeKind = Literal["step", "module", "function", "self", "layers"]


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
    # passes (median of each). None: not measured (vLLM's profile steps run inside its engine).
    timer_on_off: float | None = None

    @property
    def step_ms(self) -> float:
        return self.root.time_ms

    @property
    def attributed_ms(self) -> float:
        """Time inside named modules and wrapped functions: the leaves, less inline ops between them."""
        return sum(node.time_ms for node in self.root.walk() if node.is_leaf and node.kind != "self")

    @property
    def coverage(self) -> float:
        return self.attributed_ms / self.step_ms if self.step_ms > 0 else 0.0

    def verdict(self, node: ModuleNode) -> Verdict | None:
        if node.cost is None or self.roofline is None:
            return None
        return self.roofline.judge(node.cost, node.time_ms / 1000.0)

"""Builds the per-module tree of one phase from timed steps, and puts the theory on every node.

Pure Python (no torch): the timer gives flat paths ("Llama.model.layers.3.mlp.up_proj"), this nests
them by prefix, folds the decoder layers into one "layers ×L" node (each layer kept below it), adds
an "(inline ops)" child wherever a module spends time outside its children (residual adds, reshapes,
the mul of SiLU·mul in transformers), and attaches each node's theoretical cost.
"""

import re
import statistics
from collections.abc import Mapping, Sequence

import msgspec

from tuibench.analysis.theory import ATTENTION_CORE, LABELS, Breakdown, ModelShape, Workload, breakdown, total
from tuibench.core.module_profile import ModuleNode, ModuleProfile
from tuibench.core.roofline import Cost, Roofline
from tuibench.profiling.timer import StepTimes

# What the profilers wrap and time as functions (named after the theory module they compute).
FUNCTIONS = frozenset({"rope", "kv_write", "attn_core"})
_LAYER = re.compile(r"^(.*\.)?layers\.(\d+)$")


class TheoryMap(msgspec.Struct, frozen=True, kw_only=True):
    """How one library's modules map onto the theory's modules.

    `leaves`: a module (by attribute name) or wrapped function -> the theory modules it computes.
    `inline`: a composite module ("layer", "mlp", ...) -> theory modules it runs outside its children.
    """

    leaves: Mapping[str, tuple[str, ...]]
    inline: Mapping[str, tuple[str, ...]] = {}


def on_off(timed_s: Sequence[float], bare_s: Sequence[float]) -> float | None:
    """The median timed step over the median bare one: what timing cost a profile."""
    return statistics.median(timed_s) / statistics.median(bare_s) if timed_s and bare_s else None


def mean_step(steps: Sequence[StepTimes]) -> StepTimes:
    """The average step: per path, mean time and calls (paths in the first step's order)."""
    count = len(steps)
    if not count:
        raise ValueError("no steps to average")
    paths = list(dict.fromkeys(p for step in steps for p in step.order))
    return StepTimes(
        tag=steps[0].tag,
        ns={p: sum(s.ns.get(p, 0) for s in steps) // count for p in paths},
        calls={p: sum(s.calls.get(p, 0) for s in steps) // count for p in paths},
        order=paths,
        parents={p: next(s.parents[p] for s in steps if p in s.parents) for p in paths},
        total_ns=sum(s.total_ns for s in steps) // count,
        wall_ns=round(statistics.fmean(walls)) if (walls := [s.wall_ns for s in steps if s.wall_ns]) else 0,
    )


class _Raw:
    __slots__ = ("path", "ns", "calls", "children")

    def __init__(self, path: str, ns: int, calls: int):
        self.path, self.ns, self.calls, self.children = path, ns, calls, []


def _nest(step: StepTimes) -> list[_Raw]:
    """Paths into a forest, each under the path it was called from."""
    nodes = {p: _Raw(p, step.ns[p], step.calls[p]) for p in step.order}
    roots = []
    for path in step.order:
        parent = step.parents.get(path)
        (nodes[parent].children if parent in nodes else roots).append(nodes[path])
    return roots


def _sum_costs(costs) -> Cost | None:
    """The total of the costs theory has; None if it has none (not a zero cost)."""
    present = [c for c in costs if c is not None]
    return total(present) if present else None


class _Builder:
    def __init__(self, theory: TheoryMap, costs: Breakdown):
        self.theory = theory
        self.costs = costs

    def cost_of(self, keys: Sequence[str]) -> Cost | None:
        parts = []
        for key in keys:
            for part in ATTENTION_CORE if key == "attn_core" else (key,):
                parts.append(self.costs.layer.get(part) or self.costs.outside.get(part))
        return _sum_costs(parts)

    def node(self, raw: _Raw) -> ModuleNode:
        name = raw.path.rsplit(".", 1)[-1]
        children = self._children(raw.children)
        time_ms = raw.ns / 1e6
        if not children:
            keys = self.theory.leaves.get(name, ())
            kind = "function" if name in FUNCTIONS else "module"
            label = LABELS[name] if kind == "function" else name
            return ModuleNode(name=label, path=raw.path, kind=kind, time_ms=time_ms, calls=raw.calls,
                              theory=keys, cost=self.cost_of(keys))
        role = "layer" if _LAYER.match(raw.path) else name
        inline_ms = time_ms - sum(child.time_ms for child in children)
        if inline_ms > 0:
            keys = self.theory.inline.get(role, ())
            label = "(inline: " + ", ".join(dict.fromkeys(LABELS[k] for k in keys)) + ")" if keys else "(inline ops)"
            children.append(ModuleNode(name=label, path=f"{raw.path}.<inline>", kind="self", time_ms=inline_ms,
                                       theory=keys, cost=self.cost_of(keys)))
        return self._group(name if role != "layer" else f"layer {raw.path.rsplit('.', 1)[-1]}", raw.path, "module",
                           time_ms, raw.calls, children)

    def _group(self, name, path, kind, time_ms, calls, children, layers=()) -> ModuleNode:
        keys = tuple(dict.fromkeys(k for child in children for k in child.theory))
        return ModuleNode(name=name, path=path, kind=kind, time_ms=time_ms, calls=calls, theory=keys,
                          cost=_sum_costs(child.cost for child in children), children=tuple(children),
                          layers=tuple(layers))

    def _children(self, raws: list[_Raw]) -> list[ModuleNode]:
        """The children of one node; consecutive decoder layers fold into one 'layers' node."""
        result: list[ModuleNode] = []
        layers: list[ModuleNode] = []
        for raw in raws:
            if _LAYER.match(raw.path):
                layers.append(self.node(raw))
                continue
            if layers:
                result.append(self._fold(layers))
                layers = []
            result.append(self.node(raw))
        if layers:
            result.append(self._fold(layers))
        return result

    def _fold(self, layers: list[ModuleNode]) -> ModuleNode:
        """One node for all layers: each child summed over the layers that have it."""
        path = layers[0].path.rsplit(".", 1)[0]
        return self._group(f"layers ×{len(layers)}", path, "layers", sum(n.time_ms for n in layers),
                           sum(n.calls for n in layers), _merge([list(n.children) for n in layers]), layers)


def _merge(siblings: list[list[ModuleNode]]) -> list[ModuleNode]:
    """Same-named nodes of each layer summed into one (recursively), in the first layer's order."""
    by_name: dict[str, list[ModuleNode]] = {}
    for nodes in siblings:
        for node in nodes:
            by_name.setdefault(node.name, []).append(node)
    merged = []
    for group in by_name.values():
        first = group[0]
        children = _merge([list(n.children) for n in group]) if first.children else []
        merged.append(ModuleNode(
            name=first.name, path=first.path, kind=first.kind, time_ms=sum(n.time_ms for n in group),
            calls=sum(n.calls for n in group), theory=first.theory, cost=_sum_costs(n.cost for n in group),
            children=tuple(children),
        ))
    return merged


def build_tree(steps: Sequence[StepTimes], theory: TheoryMap, costs: Breakdown) -> ModuleNode:
    """The tree of the mean step. Its root is the one outermost module, or a 'step' holding several."""
    return _tree(mean_step(steps), theory, costs)


def _tree(step: StepTimes, theory: TheoryMap, costs: Breakdown) -> ModuleNode:
    builder = _Builder(theory, costs)
    roots = builder._children(_nest(step))
    if len(roots) == 1:
        only = roots[0]
        return msgspec.structs.replace(only, kind="step")
    return builder._group("forward step", "", "step", step.total_ns / 1e6, 1.0, roots)


def profile_from_steps(steps: Sequence[StepTimes], *, library: str, input_len: int, work: Workload, shape: ModelShape,
                       attn: str, roofline: Roofline | None, theory: TheoryMap) -> ModuleProfile:
    """One phase's profile: the mean step's tree, with the theory of `work` on it."""
    step = mean_step(steps)
    return ModuleProfile(
        library=library, phase=work.phase, batch=work.batch, input_len=input_len, context=work.context, steps=len(steps), dtype=work.dtype,
        attn=attn, root=_tree(step, theory, breakdown(shape, work)), roofline=roofline,
        step_wall_ms=step.wall_ns / 1e6 or None,
    )

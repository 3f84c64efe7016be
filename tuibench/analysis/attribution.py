"""Coarse to fine: why one library's step is slower than another's, category by category, and how much of a
coarse run's time per token the model's forward explains.

`attribute(a, b)`: two profiles of one shape (phase, batch, input length, dtype). Each one's step time is split
into the categories of analysis/categories.py, summing its leaves (a fused module counts whole in its one
category), with the step's remainder in its own row, so each library's rows sum to its step exactly and the
rows' differences sum to the gap exactly, by construction. The step is the measured wall where both profiles
have it (the forward, plus sampling, scheduling and Python, which land in the remainder), else the forward.
Each row carries the theory's roofline time for its work on each side: the same roofline time and a different
measured time is the same work done slower; a different roofline time is different work (eager attention
materialising its scores, another dtype).

`coarse_fine(...)`: a coarse run's decode time per token (TPOT: a static offline batch makes one token per
sequence per step; serving at concurrency 1, one sequence) against the same library's profiled decode step at
that batch and the nearest context. What the forward does not explain is the engine's work around it
(batching, scheduling, detokenisation, for a server HTTP and streaming).
"""

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from tuibench.analysis.categories import CATEGORIES, LABELS, OTHER, OUTSIDE, category_of
from tuibench.analysis.theory import LABELS as THEORY_KEYS
from tuibench.core.module_profile import ModuleProfile
from tuibench.core.roofline import Cost
from tuibench.core.store import RunRow

# A profile is matched to a coarse run only this close in context (relative): decode steps grow with the context.
CONTEXT_TOLERANCE = 0.25


class Part(msgspec.Struct, frozen=True, kw_only=True):
    """A theory module inside a category, where a side times it alone: transformers' KV-cache write, which vLLM
    runs inside its Attention layer. None on a side that fuses it with others."""

    key: str  # analysis.theory key
    a_ms: float | None
    b_ms: float | None


class CategoryRow(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    a_ms: float
    b_ms: float
    gap_ms: float  # b_ms - a_ms
    share: float | None  # of the whole gap (1.0: all of it; negative: it narrows it); None: no gap to share
    a_roofline_ms: float | None = None  # the theory's time for this category's work on A's device; None: no theory
    b_roofline_ms: float | None = None
    # B's work against A's by the theory's FLOPs and bytes: "same" (both within 1 %), "more" or "less" (neither
    # the other way), "other" (one more, one less). Eager attention materialises its scores: more bytes, the same
    # FLOPs, and on a compute-bound roofline the same time. None: no theory on a side.
    work: Literal["same", "more", "less", "other"] | None = None
    parts: tuple[Part, ...] = ()  # of a category of several theory modules, those a side timed alone


class Attribution(msgspec.Struct, frozen=True, kw_only=True):
    a: str  # "transformers · run 12"
    b: str
    phase: str
    batch: int
    input_len: int
    dtype: str
    basis: Literal["wall", "forward"]  # what a step's time is here
    a_step_ms: float
    b_step_ms: float
    rows: tuple[CategoryRow, ...]

    gap_ms: float  # b_step_ms - a_step_ms: the rows' gaps sum to it


def category_times(profile: ModuleProfile, basis: Literal["wall", "forward"]) -> dict[str, float]:
    """ms per step in each category; the forward's remainder (inline ops theory has no name for) in OTHER and,
    on the wall's basis, the wall less the forward in OUTSIDE: they sum to the step."""
    times = dict.fromkeys(LABELS, 0.0)
    for node in profile.root.walk():  # a folded "layers" node's children hold every layer once
        if node.is_leaf:
            times[category_of(node.theory)] += node.time_ms
    times[OTHER] += profile.step_ms - sum(times.values())  # leaves exceeding a parent by rounding come back here
    if basis == "wall":
        times[OUTSIDE] = profile.step_wall_ms - profile.step_ms
    return times


def part_times(profile: ModuleProfile) -> dict[str, float]:
    """ms per step of each theory module a leaf of `profile` computes alone (a fused leaf's modules are absent)."""
    times: dict[str, float] = {}
    for node in profile.root.walk():
        if node.is_leaf and len(node.theory) == 1:
            times[node.theory[0]] = times.get(node.theory[0], 0.0) + node.time_ms
    return times


def _parts(label: str, a: dict[str, float], b: dict[str, float]) -> tuple[Part, ...]:
    keys = next((c.keys for c in CATEGORIES if c.label == label), frozenset())
    if len(keys) < 2:
        return ()
    return tuple(Part(key=key, a_ms=a.get(key), b_ms=b.get(key)) for key in THEORY_KEYS
                 if key in keys and (key in a) != (key in b))  # timed alone on one side only: the other fuses it


def category_costs(profile: ModuleProfile) -> dict[str, Cost]:
    """The theory's cost of each category's work (categories with none are absent)."""
    costs: dict[str, Cost] = {}
    for node in profile.root.walk():
        if node.is_leaf and node.cost is not None:
            label = category_of(node.theory)
            costs[label] = costs[label] + node.cost if label in costs else node.cost
    return costs


def attribute(a: ModuleProfile, b: ModuleProfile, a_name: str = "", b_name: str = "") -> Attribution:
    """B's step against A's, split by category. ValueError (saying which) where the shapes differ."""
    for field in ("phase", "batch", "input_len", "dtype"):
        if getattr(a, field) != getattr(b, field):
            raise ValueError(f"the profiles differ in {field} ({getattr(a, field)} against {getattr(b, field)}): "
                             "compare profiles of one shape")
    basis: Literal["wall", "forward"] = "wall" if a.step_wall_ms and b.step_wall_ms else "forward"
    times = [category_times(p, basis) for p in (a, b)]
    costs = [category_costs(p) for p in (a, b)]
    parts = [part_times(p) for p in (a, b)]

    def roofline_ms(profile: ModuleProfile, cost: Cost | None) -> float | None:
        return profile.roofline.time_s(cost) * 1000.0 if cost is not None and profile.roofline else None

    a_step_ms, b_step_ms = sum(times[0].values()), sum(times[1].values())
    gap_ms = b_step_ms - a_step_ms
    rows = tuple(CategoryRow(label=label, a_ms=times[0][label], b_ms=times[1][label],
                             gap_ms=times[1][label] - times[0][label],
                             share=(times[1][label] - times[0][label]) / gap_ms if gap_ms else None,
                             a_roofline_ms=roofline_ms(a, costs[0].get(label)),
                             b_roofline_ms=roofline_ms(b, costs[1].get(label)),
                             work=_work(costs[0].get(label), costs[1].get(label)),
                             parts=_parts(label, *parts))
                 for label in LABELS if times[0][label] or times[1][label])
    return Attribution(a=a_name or a.library, b=b_name or b.library, phase=a.phase, batch=a.batch,
                       input_len=a.input_len, dtype=a.dtype, basis=basis, a_step_ms=a_step_ms, b_step_ms=b_step_ms,
                       gap_ms=gap_ms, rows=rows)


def _shape(profile: ModuleProfile) -> tuple:
    return profile.phase, profile.batch, profile.input_len, profile.dtype


def _work(a: Cost | None, b: Cost | None, tolerance: float = 0.01) -> str | None:
    if a is None or b is None:
        return None
    signs = {0 if abs(y - x) <= tolerance * max(x, y) else (1 if y > x else -1)
             for x, y in ((a.flops, b.flops), (a.bytes_moved, b.bytes_moved))}
    if signs == {0}:
        return "same"
    return "other" if {1, -1} <= signs else ("more" if 1 in signs else "less")


def matching_pairs(a: Sequence[tuple[int, ModuleProfile]], b: Sequence[tuple[int, ModuleProfile]]) -> list[tuple]:
    """((run, profile) of A, (run, profile) of B) per shape both have, the newest (last) of each, in A's order."""
    newest_a = {_shape(p): (r, p) for r, p in a}
    newest_b = {_shape(p): (r, p) for r, p in b}
    return [(found, newest_b[shape]) for shape, found in newest_a.items() if shape in newest_b]


class CoarseFine(msgspec.Struct, frozen=True, kw_only=True):
    """One library: a coarse run's decode time per token against its profiled decode step at that shape."""

    library: str
    run_id: int
    scenario: str
    batch: int
    context: float  # the coarse run's mean context while decoding: input + output / 2
    tpot_ms: float  # its mean time per output token after the first
    profile_run_id: int
    profile_context: float
    forward_ms: float  # the profiled decode step's forward
    wall_ms: float | None  # and its whole step, where measured (sampling, Python: the profile's own outside)
    overhead_ms: float  # tpot_ms - forward_ms: what the forward does not explain, the engine's work around it


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """Coarse to fine for two sides of a comparison (two libraries of a plan, or two runs)."""

    a: str
    b: str  # "": one side only (a plan of one library: its coarse runs against its profiles)
    attributions: list[Attribution]  # B's step against A's, one per shape both profiled
    coarse_fine: list[CoarseFine]  # each side's coarse runs against its own decode profile
    unmatched: list[str]  # why a coarse run found no profile to meet, in words


def coarse_batch(spec) -> int | None:
    """How many sequences a coarse run decodes at once, where that is fixed: a static offline batch, or serving
    with one request in flight. None otherwise (continuous batching under load changes it step to step)."""
    if spec.scenario == "offline":
        return spec.offline.batch_size
    if spec.scenario == "serving" and spec.serving.max_concurrency == 1:
        return 1
    return None


def coarse_fine(library: str, run_id: int, spec, metrics,
                profiles: Sequence[tuple[int, ModuleProfile]]) -> CoarseFine | str:
    """The match for one coarse run among `profiles` ((run id, profile) of the same library), or why there is
    none, in words."""
    batch = coarse_batch(spec)
    if batch is None:
        return f"run {run_id}: its batch is not fixed (serving with more than one request in flight)"
    if metrics is None or metrics.tpot_ms is None or not metrics.completed:
        return f"run {run_id}: no time per output token (no request made two tokens)"
    context = (metrics.input_tokens + metrics.output_tokens / 2) / metrics.completed
    decode = [(rid, p) for rid, p in profiles if p.phase == "decode" and p.batch == batch]
    if not decode:
        return f"run {run_id}: no {library} decode profile at batch {batch}"
    rid, nearest = min(decode, key=lambda item: abs(item[1].context - context))
    if abs(nearest.context - context) > CONTEXT_TOLERANCE * context:
        return (f"run {run_id}: its context is {context:.0f}, the nearest {library} decode profile's "
                f"{nearest.context:.0f}: profile a length near it")
    tpot_ms = metrics.tpot_ms.mean
    return CoarseFine(library=library, run_id=run_id, scenario=spec.scenario, batch=batch, context=context,
                      tpot_ms=tpot_ms, profile_run_id=rid, profile_context=nearest.context,
                      forward_ms=nearest.step_ms, wall_ms=nearest.step_wall_ms, overhead_ms=tpot_ms - nearest.step_ms)


def explain(a_runs: Sequence[RunRow], b_runs: Sequence[RunRow], profiles: Mapping[int, Sequence[ModuleProfile]],
            a: str, b: str) -> Explanation:
    """Side A's runs against side B's: per shape both profiled (the newest profile of each), the attribution of
    the step's gap; per finished coarse run of either side, its TPOT against that side's decode profile."""

    def profiled(runs: Sequence[RunRow]) -> list[tuple[int, ModuleProfile]]:
        return [(r.id, p) for r in sorted(runs, key=lambda r: r.id) if r.scenario == "profile"
                for p in profiles.get(r.id, ())]

    sides = [profiled(a_runs), profiled(b_runs)]
    attributions = [attribute(pa, pb, f"{a} · run {ra}", f"{b} · run {rb}")
                    for (ra, pa), (rb, pb) in matching_pairs(*sides)]
    matched, unmatched = [], []
    for runs, found in zip((a_runs, b_runs), sides, strict=True):
        for run in runs:
            if run.scenario in ("offline", "serving") and run.status == "finished":
                outcome = coarse_fine(run.library, run.id, run.spec, run.metrics, found)
                (matched if isinstance(outcome, CoarseFine) else unmatched).append(outcome)
    return Explanation(a=a, b=b, attributions=attributions, coarse_fine=matched, unmatched=unmatched)


def explainable(a: RunRow, b: RunRow, profiles: Mapping[int, Sequence[ModuleProfile]], found: Explanation) -> None:
    """Why two stored runs cannot be explained one by the other, as a UserError; nothing when they can: two profile
    runs with a shape in common, or a coarse run and a profile run of its own library."""
    from tuibench.core.errors import UserError

    if a.scenario == "profile" and b.scenario == "profile" and not found.attributions:
        shapes = [", ".join(sorted({f"{p.phase} {p.input_len} ×{p.batch}" for p in profiles[r.id]})) for r in (a, b)]
        raise UserError(f"runs {a.id} and {b.id} profiled no shape in common (run {a.id}: {shapes[0]}; run {b.id}: "
                        f"{shapes[1]}): profile both at one batch and length")
    if a.scenario != "profile" and b.scenario != "profile":
        raise UserError(f"runs {a.id} and {b.id} are both coarse runs: explain takes two profile runs, or a coarse "
                        "run and a profile run of its library (`runs diff` compares two coarse runs)")
    if a.scenario != b.scenario and a.library != b.library:
        raise UserError(f"run {a.id} is {a.library}, run {b.id} {b.library}: a coarse run is explained by a profile "
                        "of its own library")

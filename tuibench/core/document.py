"""The comparison document: a plan's runs side by side as data, what `tuibench compare` prints, exports as JSON,
CSV and Markdown, and draws as the paper's figures. Here, below report/, so that the tables and the figures both
read it from below and neither imports the other.

Two of its parts are worked out above core: each profile's share per module category and the coarse-to-fine
explanation (analysis/ names the categories and attributes the gap, and analysis sits above core). The caller
computes them and `assemble` takes them as they are; the explanation's type is a parameter of the document for
the same reason (report/comparison.py builds `ComparisonDocument[Explanation]`).
"""

from collections.abc import Sequence
from typing import Generic, TypeVar

import msgspec

from tuibench.core.capacity import Capacity, verdict
from tuibench.core.catalogue import METRICS
from tuibench.core.side_by_side import Comparison
from tuibench.core.spec import DatasetSpec
from tuibench.core.store import PlanRow, RunRow, StepRow
from tuibench.core.validity import RunWarning

ExplanationT = TypeVar("ExplanationT")


class StepResult(msgspec.Struct, frozen=True, kw_only=True):
    step: int
    library: str
    model: str
    dataset: str
    scenario: str
    rate: float | None  # serving only
    status: str
    run_id: int | None
    reason: str | None  # why it was skipped, failed or not run
    capacity: Capacity | None = None  # a capacity step: its probes (each with its run) and bracket


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    run_id: int
    library: str
    model: str
    dataset: str
    scenario: str
    rate: float | None
    status: str
    metrics: dict[str, float | None]  # every metric of the catalogue, by its key
    warnings: list[RunWarning] = []


class ProfileShares(msgspec.Struct, frozen=True, kw_only=True):
    run_id: int
    library: str
    phase: str
    input_len: int
    batch: int
    step_ms: float
    shares_pct: dict[str, float]  # % of the step per module category


class ComparisonDocument(msgspec.Struct, Generic[ExplanationT], frozen=True, kw_only=True):
    plan: PlanRow | None
    steps: list[StepResult]
    results: list[RunResult]
    comparison: Comparison
    profiles: list[ProfileShares]
    datasets: list[DatasetSpec]  # the workloads the runs ran, once each
    capacities: list[Capacity] = []  # the capacity steps', in step order
    verdicts: list[str] = []  # a line per workload searched: each library's capacity under the SLO
    # Coarse to fine: the baseline against another library (or the pair asked for), where there is anything to
    # explain (profiles of both at one shape, or a coarse run and a decode profile of one library).
    explanation: ExplanationT | None = None


def verdicts_of(capacities: Sequence[Capacity]) -> list[tuple[tuple[str, str, str], list[Capacity], str]]:
    """The capacity steps grouped by what they searched (model, workload, SLO), each group with its verdict."""
    groups: dict[tuple[str, str, str], list[Capacity]] = {}
    for capacity in capacities:
        groups.setdefault((capacity.model, capacity.dataset, capacity.slo), []).append(capacity)
    return [(key, group, verdict(group)) for key, group in groups.items()]


def assemble(runs: Sequence[RunRow], comparison: Comparison, profiles: Sequence[ProfileShares],
             plan: PlanRow | None = None, steps: Sequence[StepRow] = (),
             explanation: ExplanationT | None = None) -> ComparisonDocument[ExplanationT]:
    """The document of stored runs (and, for a plan, its steps), with their comparison, the profiles' shares and the
    explanation as the caller worked them out."""
    capacities = [s.capacity for s in steps if s.capacity is not None and (s.capacity.probes or s.capacity.skipped)]
    many_models = len({c.model for c in capacities}) > 1
    return ComparisonDocument(
        plan=plan,
        steps=[StepResult(step=s.step, library=s.spec.library, model=s.spec.model,
                          dataset="" if s.spec.scenario == "profile" else s.spec.dataset.label,
                          scenario="capacity" if s.capacity else s.spec.scenario,
                          rate=None if s.capacity else s.spec.rate, status=s.status, run_id=s.run_id, reason=s.reason,
                          capacity=s.capacity)
               for s in steps],
        capacities=capacities,
        verdicts=[f"{dataset}{f' · {model}' if many_models else ''}: {line}"
                  for (model, dataset, _), _, line in verdicts_of(capacities)],
        results=[RunResult(run_id=r.id, library=r.library, model=r.model, dataset=r.dataset, scenario=r.scenario,
                           rate=r.spec.rate, status=r.status, warnings=r.warnings,
                           metrics={m.key: m.read(r.metrics) if r.metrics else None for m in METRICS})
                 for r in runs if r.scenario != "profile"],
        comparison=comparison,
        profiles=list(profiles),
        datasets=list({r.spec.dataset.label: r.spec.dataset for r in runs if r.scenario != "profile"}.values()),
        explanation=explanation,
    )

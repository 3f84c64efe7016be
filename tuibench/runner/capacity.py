"""`tuibench capacity`: per library, the highest request rate that meets every objective, found by probing on one
server (core/capacity.py decides the rates). Each probe is a one-step serving plan run by the run service and
stored as any run; the library's server is started once and kept for all its probes."""

import math
from collections.abc import Callable

import msgspec

from tuibench.core.capacity import Bracket, Objective, missed, search
from tuibench.core.errors import UserError
from tuibench.core.plan import PlanRequest


class Probe(msgspec.Struct, frozen=True, kw_only=True):
    rate_rps: float
    run_id: int | None
    status: str
    met: bool
    missed: list[str]  # why not, in words
    ttft_p99_ms: float | None = None
    tpot_p99_ms: float | None = None
    completed_rps: float | None = None
    measured_ms: dict[str, float | None] = {}  # each objective's latency as this probe measured it, by its label


class Capacity(msgspec.Struct, frozen=True, kw_only=True):
    library: str
    probes: list[Probe] = []
    bracket: Bracket | None = None
    skipped: str | None = None  # why it was not probed (unavailable here, a bad input)

    @property
    def capacity_rps(self) -> float | None:
        return self.bracket.met_rps if self.bracket else None


class SearchSettings(msgspec.Struct, frozen=True, kw_only=True):
    start_rps: float = 1.0
    precision: float = 0.1  # the bracket's width relative to the rate that held
    floor_rps: float = 0.05
    ceiling_rps: float = 256.0
    # Without --num-requests, a probe sends this long at its rate (at least 16 requests): a short burst would pass
    # at any rate, since a queue takes time to show.
    probe_s: float = 10.0

    def requests_at(self, rate_rps: float, asked: int | None) -> int:
        return asked or max(16, math.ceil(rate_rps * self.probe_s))


def find_capacities(request: PlanRequest, objectives: tuple[Objective, ...], settings: SearchSettings,
                    run: Callable, on_probe: Callable[[str, Probe], None] = lambda lib, p: None) -> list[Capacity]:
    """For each library of `request`: its capacity. `run(plan, servers)` runs one probe's plan (the caller's run
    service call, with its progress view) and returns the plan's state."""
    from tuibench.runner.plans import build_plan
    from tuibench.runner.serving import ServerPool

    results = []
    for library in request.libraries:
        probes: list[Probe] = []
        with ServerPool(request.port) as servers:
            rates = search(settings.start_rps, settings.precision, settings.floor_rps, settings.ceiling_rps)
            rate = next(rates)
            while True:
                label = f"capacity of {library} under {', '.join(o.label for o in objectives)}: {rate:.3g} req/s"
                try:
                    plan = build_plan(msgspec.structs.replace(
                        request, libraries=(library,), scenarios=("serving",), rates=(rate,), repeat=1, label=label,
                        num_requests=settings.requests_at(rate, request.num_requests)))
                except UserError as exc:
                    results.append(Capacity(library=library, skipped=str(exc)))
                    break
                step = run(plan, servers).steps[0]
                probe = _probe(rate, step, objectives)
                probes.append(probe)
                on_probe(library, probe)
                if step.run.status == "interrupted":
                    results.append(Capacity(library=library, probes=probes, skipped=step.run.error))
                    return results
                try:
                    rate = rates.send(probe.met)
                except StopIteration as done:
                    results.append(Capacity(library=library, probes=probes, bracket=done.value))
                    break
    return results


def _probe(rate: float, step, objectives: tuple[Objective, ...]) -> Probe:
    state = step.run
    if not state.records:
        return Probe(rate_rps=rate, run_id=step.run_id, status=state.status, met=False,
                     missed=[state.error or "no request completed"])
    metrics = state.metrics()
    why = missed(objectives, metrics)
    return Probe(rate_rps=rate, run_id=step.run_id, status=state.status, met=not why, missed=why,
                 ttft_p99_ms=metrics.ttft_ms.p99 if metrics.ttft_ms else None,
                 tpot_p99_ms=metrics.tpot_ms.p99 if metrics.tpot_ms else None,
                 completed_rps=metrics.completion_rps or metrics.request_throughput_rps,
                 measured_ms={o.label: o.value_ms(metrics) for o in objectives})


def verdict(capacities: list[Capacity], objectives: tuple[Objective, ...]) -> str:
    """One line: 'vllm sustains 2.1 req/s under the SLO (…), transformers 0.6 req/s'."""
    parts = []
    for number, capacity in enumerate(capacities):
        if capacity.skipped:
            parts.append(f"{capacity.library} was not measured ({capacity.skipped})")
        elif capacity.capacity_rps is None:
            parts.append(f"{capacity.library} meets it at no rate tried (down to "
                         f"{capacity.bracket.missed_rps:.3g} req/s)")
        else:
            at_least = "at least " if capacity.bracket.missed_rps is None else ""  # held up to the ceiling
            sustains = "sustains " if number == 0 else ""
            parts.append(f"{capacity.library} {sustains}{at_least}{capacity.capacity_rps:.3g} req/s")
    slo = ", ".join(o.label for o in objectives)
    return f"{parts[0]} under the SLO ({slo})" + "".join(f", {part}" for part in parts[1:])

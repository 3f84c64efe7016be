"""A capacity step of a plan: per library, the highest request rate that meets every objective, found by probing
on one server (core/capacity.py decides the rates). Each probe is a serving run of the step, made by the run
service and stored as any run; the plan's server pool keeps the library's server for all its probes, since only
the rate and the request count change between them."""

from collections.abc import Callable

import msgspec

from tuibench.core.capacity import Capacity, Probe, judge
from tuibench.core.plan import PlanStep, StepStatus
from tuibench.core.reducer import RunState
from tuibench.core.spec import RunSpec


def probe_spec(step: PlanStep, rate_rps: float) -> RunSpec:
    """The step's serving run at `rate_rps`, sending for the search's probe time unless a count was asked."""
    spec = step.spec
    return msgspec.structs.replace(spec, num_requests=step.search.requests_at(rate_rps, spec.num_requests),
                                   serving=msgspec.structs.replace(spec.serving, request_rate=rate_rps))


def search_capacity(step: PlanStep, run_once: Callable[[RunSpec], RunState],
                    on_probe: Callable[[Probe, Capacity], None] = lambda probe, so_far: None) -> Capacity:
    """Probes until the capacity is bracketed; `run_once(spec)` makes one run and returns its final state,
    `on_probe(probe, capacity so far)` hears of each probe as it ends.

    A probe that sent nothing (its server or engine failed) ends the search: halving the rate would only fail
    again. One whose requests failed has missed, and the search goes on."""
    search = step.search
    objectives = search.objectives
    outcome = step.no_capacity_yet
    probes: list[Probe] = []
    rates = search.rates()
    rate = next(rates)
    while True:
        run = run_once(probe_spec(step, rate))
        probe = judge(rate, run.run_id, run.status, run.metrics() if run.requests_done else None, run.error, objectives)
        probes.append(probe)
        on_probe(probe, msgspec.structs.replace(outcome, probes=list(probes)))
        if run.status == "interrupted" or not run.requests_done:
            return msgspec.structs.replace(outcome, probes=probes, skipped=run.error or f"run {run.run_id} sent nothing")
        try:
            rate = rates.send(probe.met)
        except StopIteration as done:
            return msgspec.structs.replace(outcome, probes=probes, bracket=done.value)


def capacity_status(capacity: Capacity) -> StepStatus:
    """Finished once bracketed (even when no rate met the objectives: that is an answer); otherwise the search
    stopped: interrupted, or failed."""
    if capacity.bracket is not None:
        return "finished"
    interrupted = capacity.probes and capacity.probes[-1].status == "interrupted"
    return "interrupted" if interrupted else "failed"

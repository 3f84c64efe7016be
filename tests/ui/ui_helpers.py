"""What the app's tests share besides fixtures (a module of its own: `from conftest import …` finds whichever
conftest.py was imported first)."""

from pathlib import Path

from tuibench.core.plan import PlanStep
from tuibench.core.store import ResultsStore


def plan_in_progress(db: Path):
    """Plan 1 of `sample_db` as the Live screen sees it mid-way: steps 1-4 done, step 5 half through its requests."""
    from tuibench.core.plan import Plan, PlanStarted, StepEnded, StepStarted
    from tuibench.core.reducer import PlanState
    from tuibench.ui.session import stored_run_events

    state = PlanState()
    with ResultsStore.open(db, create=False) as store:
        stored = store.get_plan(1)
        steps = tuple(PlanStep(index=s.step, spec=s.spec, skip=s.reason if s.status == "skipped" else None)
                      for s in stored.steps)
        state.apply(PlanStarted(plan_id=1, plan=Plan(label=stored.plan.label, request=stored.plan.request,
                                                     steps=steps)))
        for step in stored.steps[:5]:
            state.apply(StepStarted(index=step.step, run_id=step.run_id))
            events = [e for e in stored_run_events(store, step.run_id)]
            if step.step == 5:
                events = events[:1 + 6]  # RunStarted and six of its requests
            for event in events:
                state.apply(event)
            if step.step < 5:
                state.apply(StepEnded(index=step.step, status="finished", run_id=step.run_id))
    return state

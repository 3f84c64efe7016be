"""`tuibench run`: one library on one workload, offline or serving (a run per rate when sweeping)."""

from pathlib import Path

from tuibench.cli.common import (
    EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, add_db_option, check_writable, console, execute, open_store,
    print_comparison, print_profiles,
)
from tuibench.cli.flags import add_plan_options, request_from_args

SCENARIOS = ("offline", "serving")


def register(commands) -> None:
    parser = commands.add_parser("run", help="benchmark one library on one workload")
    add_plan_options(parser, SCENARIOS)
    parser.add_argument("--json", type=Path, help="write the result (spec, environment, metrics, requests) here")
    parser.add_argument("--events", type=Path, help="write the event log (JSONL) here")
    add_db_option(parser)
    parser.set_defaults(handler=main, scenarios_offered=SCENARIOS)


def main(args) -> int:
    """`run` and `profile`: a plan of one library and one workload; each step's tables as it ends."""
    import msgspec

    from tuibench.report.tables import print_warnings, run_tables
    from tuibench.runner.plans import build_plan

    plan = build_plan(request_from_args(args, args.scenarios_offered))
    check_writable(getattr(args, "json", None), args.events)
    shown = console()

    def show(step) -> None:
        state = step.run
        if state.spec is not None and state.spec.scenario == "profile":
            print_profiles(shown, state.profiles, getattr(args, "per_layer", False))
        elif state.requests_done:
            for table in run_tables(state.metrics(), title=f"run {step.run_id}: {state.status}"):
                shown.print(table)
        print_warnings(shown, state.warnings())

    state = execute(plan, args, show)
    ran = [step for step in state.steps if step.run_id is not None]
    if len(ran) > 1:
        repeated = plan.request.repeat > 1
        print_comparison(shown, args.db, state.plan_id,
                         sections=("groups", "repeats", "sweeps") if repeated else ("sweeps",))
    if getattr(args, "json", None) and ran:
        with open_store(args.db, create=False) as store:
            documents = [store.get_run(step.run_id) for step in ran]
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(documents if len(ran) > 1 else documents[0])))
    return max((_outcome(step) for step in ran), default=EXIT_FAILED)


def _outcome(step) -> int:
    """The exit code of one step's run, after a line on stderr for a run that did not finish cleanly."""
    import sys

    state = step.run
    if state.status == "finished":
        return EXIT_OK
    error = state.error
    if state.status == "partial":
        failed = state.requests_done - state.requests_ok
        error = f"{failed} of {state.requests_done} requests failed (first: {state.first_error})"
    sys.stderr.write(f"tuibench: run {step.run_id} {state.status}: {error}\n")
    if state.status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_USAGE if state.failure_kind == "input" else EXIT_FAILED

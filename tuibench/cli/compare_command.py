"""`tuibench compare`: a comparison plan (libraries × datasets × scenarios × rates) side by side; `compare show ID`
prints a stored one again, `compare list` lists them."""

from pathlib import Path

from tuibench.cli.common import (
    EXIT_INTERRUPTED, EXIT_FAILED, EXIT_OK, add_db_option, check_writable, console, execute, open_store,
    print_comparison,
)
from tuibench.cli.flags import add_plan_options, request_from_args
from tuibench.core.catalogue import BY_KEY
from tuibench.core.errors import UserError
from tuibench.core.plan import SCENARIOS


def _pair(text: str) -> tuple[str, str]:
    import argparse

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if len(names) != 2 or names[0] == names[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: give two different libraries, e.g. transformers,vllm")
    return names[0], names[1]


def register(commands) -> None:
    parser = commands.add_parser(
        "compare", help="a comparison plan: libraries × datasets × scenarios × rates, side by side",
        description="tuibench compare [PLAN.toml] [options] runs a plan; `compare show ID` prints a stored one again, "
                    "`compare list` lists them. Options override the plan file's values.")
    parser.add_argument("what", nargs="*", metavar="PLAN.toml | show ID | list",
                        help="a plan file (or a shipped plan: quick, paper, …); show ID; list")
    add_plan_options(parser, SCENARIOS)
    parser.add_argument("--explain", type=_pair, metavar="A,B", help="coarse to fine for two libraries: B's step "
                        "against A's by module category, and each one's time per token against its decode step "
                        "(default: the baseline against the next library)")
    outputs = parser.add_argument_group("results")
    outputs.add_argument("--json", type=Path, help="write the comparison (steps, runs, tables, sweeps, shares) as JSON")
    outputs.add_argument("--csv", type=Path, help="write every compared value, one per line, as CSV")
    outputs.add_argument("--markdown", type=Path, help="write the side-by-side tables as Markdown")
    outputs.add_argument("--figures", type=Path, metavar="DIR", help="write the paper's figures here (PNG and SVG)")
    outputs.add_argument("--events", type=Path, help="write each run's event log (JSONL, numbered per step) here")
    add_db_option(parser)
    parser.set_defaults(handler=main)


def main(args) -> int:
    from tuibench.core.planfiles import load_plan_table
    from tuibench.runner.plans import build_plan

    what = args.what
    if what[:1] == ["list"] and len(what) == 1:
        return _list_plans(args)
    if what[:1] == ["show"]:
        if len(what) != 2 or not what[1].isdigit():
            raise UserError("compare show takes one plan id, e.g. `tuibench compare show 3` (`compare list` lists them)")
        check_writable(args.json, args.csv, args.markdown)  # before anything is read: nothing half written
        with open_store(args.db, create=False) as store:
            store.get_plan(int(what[1]))  # a missing plan is one line, before anything is printed
        print_comparison(console(), args.db, int(what[1]), baseline=getattr(args, "baseline", None), args=args)
        return EXIT_OK
    if len(what) > 1:
        raise UserError(f"compare takes one plan file, got {len(what)}: {' '.join(what)}")
    plan = build_plan(request_from_args(args, SCENARIOS, load_plan_table(what[0]) if what else None))
    check_writable(args.json, args.csv, args.markdown, args.events)
    shown = console()

    def show(step) -> None:
        state = step.run
        if state.spec is not None and state.spec.scenario == "profile":
            shown.print(f"[dim]· {len(state.profiles)} module profile(s) stored[/]")
        elif state.requests_done:
            m = state.metrics()
            throughput = BY_KEY["output_throughput_tok_s"].named(m.output_throughput_tok_s)
            shown.print(f"[dim]· {step.step.label}: {state.status}, {m.completed} ok / {m.failed} failed, "
                        f"{throughput}[/]", highlight=False)
        if state.error:
            shown.print(f"[yellow]· {step.step.label}: {state.status}: {state.error}[/]", highlight=False)

    state = execute(plan, args, show)
    print_comparison(shown, args.db, state.plan_id, args=args)
    statuses = {step.status for step in state.steps}
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if statuses & {"failed", "partial"} else EXIT_OK


def _list_plans(args) -> int:
    from tuibench.report.tables import plans_table

    shown = console()
    with open_store(args.db, create=False) as store:
        plans = store.list_plans()
    if not plans:
        shown.print("no plans stored yet: `tuibench compare --libraries transformers,vllm` makes one")
    else:
        shown.print(plans_table(plans))
    return EXIT_OK

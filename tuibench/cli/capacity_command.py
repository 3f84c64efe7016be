"""`tuibench capacity`: per library, the highest request rate it sustains under an SLO."""

from pathlib import Path

from tuibench.cli.common import add_db_option, check_writable, console, execute, plan_exit, print_comparison
from tuibench.cli.flags import add_plan_options, request_from_args

SCENARIOS = ("capacity",)


def register(commands) -> None:
    parser = commands.add_parser(
        "capacity", help="the highest request rate each library sustains under an SLO",
        description="Per library, probes serving runs on one server, doubling the rate while every objective holds, "
                    "then bisecting: the highest rate that meets them all.")
    # Here the objectives are the command's point: --slo is capacity's (goodput objectives belong to `run`).
    add_plan_options(parser, SCENARIOS, more_flags={"capacity.slo": ("--slo",)})
    parser.add_argument("--json", type=Path, help="write the plan's probes, capacities and verdict here")
    parser.add_argument("--figures", type=Path, metavar="DIR", help="draw each objective against the probed rate "
                        "here (capacity.png and .svg)")
    add_db_option(parser)
    parser.set_defaults(handler=main)


def main(args) -> int:
    """A plan of a capacity step per library, each probing on one server until its capacity under the SLO is
    bracketed; then the probes, the verdict, and the files asked for."""
    from tuibench.runner.plans import build_plan

    plan = build_plan(request_from_args(args, SCENARIOS))
    check_writable(args.json, args.figures)
    state = execute(plan, args, lambda step: None)
    print_comparison(console(), args.db, state.plan_id, args=args, sections=("steps", "capacity"))
    return plan_exit(state)

"""`tuibench profile`: the time of every module, prefill and decode, per input length."""

from pathlib import Path

from tuibench.cli import run_command
from tuibench.cli.common import add_db_option
from tuibench.cli.flags import add_plan_options

SCENARIOS = ("profile",)


def register(commands) -> None:
    parser = commands.add_parser("profile", help="measure the time of every module, prefill and decode, per input "
                                                 "length")
    add_plan_options(parser, SCENARIOS)
    parser.add_argument("--per-layer", action="store_true", help="show every layer, not only the layers summed")
    parser.add_argument("--events", type=Path, help="write the event log (JSONL) here")
    add_db_option(parser)
    parser.set_defaults(handler=run_command.main, scenarios_offered=SCENARIOS)

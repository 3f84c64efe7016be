"""The `tuibench` command: one thin module per command, each registering its parser and handing over to runner and
report. A plan's flags are generated from the option schema (cli/flags.py), never written here.

Imports stay light (no torch, no library), so `tuibench --help` answers at once.
"""

import sys

from tuibench import __version__
from tuibench.cli import (
    analyze_command, app_command, capacity_command, check_command, compare_command, mock_server_command,
    profile_command, run_command, runs_command, web_command,
)
from tuibench.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser
from tuibench.core.errors import UserError

COMMANDS = (run_command, profile_command, compare_command, capacity_command, analyze_command, check_command,
            app_command, web_command, mock_server_command, runs_command)


def build_parser() -> Parser:
    parser = Parser(prog="tuibench", description="Compare LLM inference libraries coarse-to-fine.")
    parser.add_argument("--version", action="version", version=f"tuibench {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    for command in COMMANDS:
        command.register(commands)
    return parser


class _Interrupts:
    """Ctrl-C, or a `kill`, ends a command as Python's default Ctrl-C does: a KeyboardInterrupt, on which a run stops
    its child and stores what it measured. Another one meanwhile says that this is under way and waits, rather than
    cutting it short and losing the run's last line; a third forces the exit. Counted from the first signal on: a
    handler installed only once the stopping began left a window in which the second one killed the process."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum, frame) -> None:
        self.count += 1
        if self.count == 2:
            sys.stderr.write("tuibench: stopping; what was measured is being stored (once more forces it)\n")
            return
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    interrupts = _Interrupts()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupts)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            if not sys.stdout.isatty():
                parser.print_help()  # no terminal to draw the app on: say what there is instead
                return EXIT_OK
            args = parser.parse_args(["app"])
        return args.handler(args)
    except UserError as exc:
        sys.stderr.write(f"tuibench: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Outside a run: everything started has been stopped on the way out.
        sys.stderr.write("tuibench: interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        # The exit code is decided and what was measured is stored. Python restores the default handlers as it shuts
        # down, so a Ctrl-C then would end the process by SIGINT instead of this code; an ignored signal stays ignored.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)

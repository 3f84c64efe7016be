"""What every command shares: the one-line parser, exit codes, the console, the store, and running a plan."""

import argparse
import sys
from pathlib import Path

from tuibench.core.errors import UserError

# The exit codes hold for every command: 0 done, 1 a run failed, 2 a bad input (nothing ran), 130 interrupted.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        sys.stderr.write(f"{self.prog}: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def add_db_option(parser, suppress: bool = False) -> None:
    parser.add_argument("--db", type=Path, help="results database (default: $XDG_DATA_HOME/tuibench/results.db)",
                        **({"default": argparse.SUPPRESS} if suppress else {}))


def positive_int(text: str) -> int:
    """A count typed by hand outside a plan (a token count, a listing's limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    port = positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"must be 1 to 65535, got {port}")
    return port


def console():
    from rich.console import Console

    # A pipe or a file gets whole lines; a terminal gets tables fitted to its width.
    found = Console(highlight=False)
    return found if found.is_terminal else Console(highlight=False, width=200, file=_ReaderMayGo(sys.stdout))


class _ReaderMayGo:
    """stdout into a pipe whose reader may end first: `tuibench run | tee log`, then Ctrl-C, ends tee too, and the
    next line raised BrokenPipeError while the run was being stopped, so its plan was stored as failed. Once the
    reader is gone the output goes to /dev/null (Python's own advice, so that its exit's flush is quiet too); the
    runs are stored as they ended."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
        return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str):
        return getattr(self._stream, name)  # isatty, fileno, encoding: the stream's own


def open_store(db: Path | None, create: bool):
    from tuibench.core.paths import default_db_path
    from tuibench.core.store import ResultsStore

    return ResultsStore.open(db or default_db_path(), create=create)


def check_writable(*paths: Path | None) -> None:
    for path in paths:
        if path is not None and not path.parent.exists():
            raise UserError(f"cannot write {path}: folder {path.parent} does not exist")


def execute(plan, args, on_step_end):
    """Runs `plan` through the run service with the CLI's progress view; returns the plan's final state."""
    from tuibench.core.paths import data_dir
    from tuibench.report.progress import PlanProgress
    from tuibench.runner.service import run_plan

    shown = console()
    with open_store(args.db, create=True) as store:
        shown.print(f"[dim]results: {store.path}[/]", highlight=False)
        # Engines print a great deal (vLLM's config dump, progress bars): into a log per run, named in the output.
        return run_plan(plan, store, observer=PlanProgress(shown, on_step_end), events_path=getattr(args, "events", None),
                        output_dir=data_dir() / "logs", port=plan.request.port)


def plan_exit(state) -> int:
    """A plan's exit code from its steps: interrupted, any step failed, or done."""
    statuses = {step.status for step in state.steps}
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    return EXIT_OK if statuses <= {"finished", "skipped"} else EXIT_FAILED


def print_comparison(shown, db: Path | None, plan_id: int, baseline: str | None = None, args=None,
                     sections: tuple[str, ...] = ("steps", "groups", "repeats", "sweeps", "capacity", "profiles",
                                                  "explain")) -> None:
    """A stored plan side by side, then the files `args` asks for (--json, --csv, --markdown, --figures)."""
    from tuibench.report.comparison import load_document, print_document, write_files

    with open_store(db, create=False) as store:
        document, profiles = load_document(store, plan_id, baseline, getattr(args, "explain", None))
    print_document(shown, document, profiles, sections)
    if args is not None:
        for path in write_files(document, getattr(args, "json", None), getattr(args, "csv", None),
                                getattr(args, "markdown", None), getattr(args, "figures", None)):
            shown.print(f"[dim]· written: {path}[/]", highlight=False)


def print_profiles(shown, profiles, per_layer: bool = False) -> None:
    from tuibench.report.module_tables import profile_table, shares_table

    for profile in profiles:
        shown.print(profile_table(profile, per_layer=per_layer))
        shown.print()
    if profiles:
        shown.print(shares_table(profiles))
        roofline = profiles[0].roofline
        if roofline:
            shown.print(f"[dim]roofline: {roofline.device}, {roofline.dtype}: {roofline.peak_flops_s / 1e9:,.1f} "
                        f"GFLOP/s, {roofline.bandwidth_bytes_s / 1e9:,.1f} GB/s, ridge {roofline.ridge:.1f} FLOP/B "
                        f"({roofline.source})[/]")

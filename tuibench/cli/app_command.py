"""`tuibench app`: the terminal app (the default when no command is given)."""

from pathlib import Path

from tuibench.cli.common import EXIT_OK, add_db_option, open_store
from tuibench.core.errors import UserError


def register(commands) -> None:
    parser = commands.add_parser("app", help="the terminal app (the default when no command is given)")
    parser.add_argument("--plan", help="start this plan file (or shipped plan) at once; Compare opens when it ends")
    parser.add_argument("--replay", type=Path, help="drive the Live screen from a recorded event log (--events)")
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed-up, e.g. 4 plays four times faster")
    parser.add_argument("--theme", choices=["tuibench-dark", "tuibench-light"], help="colour theme (remembered)")
    parser.add_argument("--read-only", action="store_true", help="show stored results only: no run is started or "
                        "deleted")
    add_db_option(parser)
    parser.set_defaults(handler=main)


def check_terminal() -> None:
    """The app draws on a terminal: into a file or a pipe it would write escape codes and never return. A browser
    tab's app (`tuibench web`) draws through textual-serve's driver, named in TEXTUAL_DRIVER."""
    import os
    import sys

    if not sys.stdout.isatty() and not os.environ.get("TEXTUAL_DRIVER"):
        raise UserError("the app draws on a terminal, and standard output is a file or a pipe: run it in a terminal, "
                        "or use `tuibench run` / `tuibench compare` for text")


def main(args) -> int:
    from tuibench.core.paths import default_db_path
    from tuibench.ui.app import TuibenchApp
    from tuibench.ui.session import EventLog
    from tuibench.ui.settings import load_settings, save_settings

    replay = EventLog(args.replay) if args.replay else None
    if args.speed <= 0:
        raise UserError(f"--speed must be positive, got {args.speed:g}")
    plan = None
    if args.plan:
        from tuibench.core.planfiles import load_plan_file
        from tuibench.runner.plans import build_plan

        plan = build_plan(load_plan_file(args.plan))  # a bad plan is one line here, not an error inside the app
    settings = load_settings()  # a stale or unknown key is one line here, not another plan run in silence
    if args.theme:
        settings.theme = args.theme
        save_settings(settings)
    db = args.db or default_db_path()
    if db.exists():
        open_store(db, create=False).close()  # a foreign or newer file: one line now, not a traceback in the app
    check_terminal()  # last: every input above is checked, and said in one line, wherever the output goes
    TuibenchApp(db_path=db, replay=replay, replay_speed=args.speed, settings=settings, plan=plan,
                read_only=args.read_only).run()
    return EXIT_OK

"""`tuibench web`: the same app in a browser tab, for demos (textual-serve)."""

from pathlib import Path

from tuibench.cli.common import EXIT_OK, add_db_option, open_store, port_number
from tuibench.core.errors import UserError


def register(commands) -> None:
    parser = commands.add_parser("web", help="the same app in a browser, for demos (textual-serve)",
                                 description="Serves the app at http://HOST:PORT; each tab is an app process of its "
                                             "own, and one run at a time goes for all of them. Reach it over SSH with "
                                             "`ssh -L PORT:127.0.0.1:PORT host`.")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this "
                        "machine only; an SSH tunnel reaches it)")
    parser.add_argument("--port", type=port_number, default=8000, help="default 8000")
    parser.add_argument("--replay", type=Path, help="each tab replays this recorded event log (--events)")
    parser.add_argument("--read-only", action="store_true", help="History, Compare, Modules and replays only: no tab "
                        "starts or deletes a run (for showing a room stored results)")
    add_db_option(parser)
    parser.set_defaults(handler=main)


def main(args) -> int:
    from tuibench.core.paths import default_db_path
    from tuibench.web import serve

    db = args.db or default_db_path()
    if db.exists():
        open_store(db, create=False).close()  # a foreign or newer file: one line now, not in every tab
    if args.replay is not None and not args.replay.is_file():
        raise UserError(f"--replay {args.replay}: no such file")
    serve(args.host, args.port, db, args.replay, args.read_only)
    return EXIT_OK

"""`tuibench runs`: list, show, diff, explain and export stored runs."""

import argparse
import sys
from pathlib import Path

from tuibench.cli.common import EXIT_OK, Parser, add_db_option, check_writable, console, open_store, positive_int
from tuibench.cli.common import print_profiles
from tuibench.core.errors import UserError


def register(commands) -> None:
    parser = commands.add_parser("runs", help="list, show and export stored runs")
    add_db_option(parser)
    runs_commands = parser.add_subparsers(dest="runs_command", parser_class=Parser)
    listing = runs_commands.add_parser("list", help="list stored runs (the default)")
    listing.add_argument("--limit", type=positive_int, default=50)
    show = runs_commands.add_parser("show", help="one run's spec, environment and metrics")
    show.add_argument("id", type=int)
    show.add_argument("--figures", type=Path, metavar="DIR", help="a serving run: write its requests' latencies over "
                      "time, the steady window shaded (PNG and SVG)")
    diff = runs_commands.add_parser("diff", help="run B against run A, metric by metric: faster, slower, or within "
                                    "noise (each with the repeats of its plan step)")
    explain = runs_commands.add_parser("explain", help="coarse to fine: profile run B against A by module "
                                       "category, or a coarse run against a profile run of its library")
    for two in (diff, explain):
        two.add_argument("a", type=int, metavar="A")
        two.add_argument("b", type=int, metavar="B")
    shares = runs_commands.add_parser("shares", help="module shares of profile runs side by side")
    shares.add_argument("ids", type=int, nargs="+", metavar="id")
    export = runs_commands.add_parser("export", help="one run's requests as CSV, or everything as JSON")
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=["csv", "json"], default="json")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    for command in (listing, show, diff, explain, shares, export):  # `runs show 3 --db X` as well as `runs --db X show 3`
        add_db_option(command, suppress=True)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from tuibench.report.tables import runs_table

    shown = console()
    command = args.runs_command or "list"
    if command == "export":
        check_writable(args.output)  # before the store is opened: a bad path is one line, nothing half written
    with open_store(args.db, create=False) as store:
        if command == "list":
            runs = store.list_runs(getattr(args, "limit", 50))
            if not runs:
                shown.print(f"no runs in {store.path} yet: `tuibench run` makes one")
            else:
                shown.print(runs_table(runs, shown.width))
        elif command == "show":
            run = store.run_row(args.id)
            if args.figures is not None:
                check_writable(args.figures)
                if run.spec.scenario != "serving":  # said before the run is shown: one line, nothing else
                    raise UserError(f"run {run.id} is not a serving run ({run.spec.scenario}): --figures draws a "
                                    "serving run's requests over time (a comparison's: `tuibench compare --figures`)")
            _show(shown, run, store.module_profiles(args.id))
            if args.figures is not None:
                _figures(shown, store, run, args.figures)
        elif command == "export":
            from tuibench.report.export import export_bytes

            data = export_bytes(store.get_run(args.id), args.format)
            if args.output is None:
                sys.stdout.buffer.write(data)
            else:
                args.output.write_bytes(data)
        elif command == "diff":
            from tuibench.report.diff import diff_table, headline, with_repeats

            a, b = with_repeats(store, args.a), with_repeats(store, args.b)
            if {r.id for r in a} == {r.id for r in b}:  # two repeats of one step: each on its own
                a, b = [r for r in a if r.id == args.a], [r for r in b if r.id == args.b]
            shown.print(diff_table(a, b))
            shown.print(headline(a, b), highlight=False)
        elif command == "explain":
            _explain(shown, store, args.a, args.b)
        elif command == "shares":
            from tuibench.report.module_tables import shares_table

            profiles = []
            for run_id in args.ids:
                found = store.module_profiles(store.run_row(run_id).id)
                if not found:
                    raise UserError(f"run {run_id} has no module profile: `tuibench profile` makes one")
                profiles += found
            shown.print(shares_table(profiles))
    return EXIT_OK


def _explain(shown, store, a_id: int, b_id: int) -> None:
    from tuibench.analysis.attribution import explain, explainable
    from tuibench.report.explain import explanation_tables

    a, b = store.run_row(a_id), store.run_row(b_id)
    profiles = {run.id: store.module_profiles(run.id) for run in (a, b) if run.scenario == "profile"}
    explanation = explain([a], [b], profiles, a.library, b.library)
    explainable(a, b, profiles, explanation)  # UserError saying why not
    for table in explanation_tables(explanation):
        shown.print(table)
        shown.print()


def _figures(shown, store, run, out_dir: Path) -> None:
    from tuibench.report.run_figure import write_run_figures
    from tuibench.report.tables import describe_spec

    steady = run.metrics.steady if run.metrics else None
    for path in write_run_figures(store.requests(run.id), steady, describe_spec(run.spec), out_dir, run.id):
        shown.print(f"wrote {path}", highlight=False)


def _show(shown, run, profiles) -> None:
    from tuibench.cluster.describe import cluster_lines
    from tuibench.report.tables import describe_spec, print_warnings, run_tables, status_markup
    from tuibench.runner.environment import environment_lines

    shown.print(f"[bold]run {run.id}[/] {status_markup(run.status)}  {run.created_at}"
                + (f"  · plan {run.plan_id}" if run.plan_id else ""))
    shown.print(describe_spec(run.spec))
    if run.error:
        shown.print(f"[red]error:[/] {run.error}")
    for line in [*environment_lines(run.environment), *cluster_lines(run.environment)]:
        shown.print(f"[dim]{line}[/]", highlight=False)
    if run.spec.scenario == "profile":
        print_profiles(shown, profiles)
    elif run.metrics:
        for table in run_tables(run.metrics):
            shown.print(table)
    print_warnings(shown, run.warnings)

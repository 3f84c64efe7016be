"""History: the runs in the results store, grouped by the plan they were steps of. Filter, open (a plan opens on
Compare, a run on Live, a profile on Modules), delete (asked twice), export as JSON."""

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from tuibench.core.catalogue import BY_KEY
from tuibench.core.units import NA
from tuibench.report.tables import status_text
from tuibench.ui.screens.base import TuibenchScreen, read_store

THROUGHPUT = BY_KEY["output_throughput_tok_s"]
# The figures before the names: at 80 columns a long plan label or dataset name must not push tok/s off screen.
# What tells runs apart first, so that 80 columns show it whole; a plan's label goes last (it is long, and in the
# library column it pushed the dataset off an 80-column screen).
COLUMNS = ("id", "status", "library", "dataset", "scenario", THROUGHPUT.column, "reqs", "when (UTC)", "model · plan")


def run_matches(run, text: str) -> bool:
    """Every word of the filter appears in the run's id, status, library, model, dataset, scenario or "plan N"."""
    plan = f"plan {run.plan_id}" if run.plan_id else ""
    haystack = " ".join(str(v) for v in (run.id, run.status, run.library, run.model, run.dataset, run.scenario,
                                         plan)).lower()
    return all(word in haystack for word in text.lower().split())


def read_history(db_path: Path) -> tuple[list, dict]:
    """The stored runs, newest first, and the plans they belong to by id."""
    return read_store(db_path, lambda store: (store.list_runs(), {plan.id: plan for plan in store.list_plans()}),
                      ([], {}))


def grouped(runs: list, plans: dict) -> list[tuple[str, object]]:
    """Rows in order: a plan of several runs as a header ("plan", PlanRow) followed by its runs ("member", RunRow),
    newest plan first; a run on its own as ("run", RunRow)."""
    members: dict[int, list] = {}
    for run in runs:
        if run.plan_id is not None:
            members.setdefault(run.plan_id, []).append(run)
    rows, shown = [], set()
    for run in runs:
        plan = run.plan_id
        if plan is not None and len(members[plan]) > 1:
            if plan not in shown:
                shown.add(plan)
                rows.append(("plan", plans.get(plan)))
                rows += [("member", r) for r in sorted(members[plan], key=lambda r: r.id)]
        else:
            rows.append(("run", run))
    return rows


class HistoryScreen(TuibenchScreen):
    AUTO_FOCUS = "#runs"  # the list, not the first input: keys act on it at once
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("enter", "open", "Open"),
        Binding("d", "delete", "Delete"),
        Binding("e", "export", "Export"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="history"):
            yield Input(placeholder="filter: library, model, dataset, status, plan…", id="history-filter")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="history-status")

    def on_mount(self) -> None:
        self._pending_delete: int | None = None
        self._history: tuple[list, dict] = ([], {})
        self.query_one("#runs", DataTable).add_columns(*COLUMNS)
        self._shown: int | None = None  # runs the filter lets through, once the store is read
        super().on_mount()

    def version(self) -> object:
        plan = self.app.plan_state
        return self.app.generation, plan.status, sum(s.run_id is not None for s in plan.steps), self.app.state.status

    def redraw(self) -> None:
        self.load(lambda: read_history(self.app.db_path), self._loaded)

    def _loaded(self, history: tuple[list, dict]) -> None:
        self._history = history
        self._fill()

    def _fill(self) -> None:
        runs, plans = self._history
        table = self.query_one("#runs", DataTable)
        cursor = table.cursor_row
        table.clear()
        text = self.query_one("#history-filter", Input).value
        shown = [r for r in runs if run_matches(r, text)]
        rows = grouped(shown, plans)
        for index, (kind, row) in enumerate(rows):
            if kind == "plan":
                if row is None:
                    continue
                table.add_row(f"plan {row.id}", status_text(row.status), "", "", "", "", str(row.runs),
                              row.created_at[5:16].replace("T", " "), f"[b]{row.label}[/b]", key=f"p{row.id}")
                continue
            metrics = row.metrics
            branch = ""
            if kind == "member":  # drawn as a tree under its plan
                branch = "├ " if index + 1 < len(rows) and rows[index + 1][0] == "member" else "└ "
            table.add_row(
                branch + str(row.id),
                status_text(row.status, f" ⚠{len(row.warnings)}" if row.warnings else ""),  # what they are: Enter opens it
                row.library, row.dataset, row.scenario,
                THROUGHPUT.cell(THROUGHPUT.read(metrics) if metrics else None), str(metrics.completed) if metrics else NA,
                row.created_at[5:16].replace("T", " "), row.model, key=str(row.id),
            )
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        self._shown = len(shown)
        self._status()

    def _status(self) -> None:
        """The count and the keys; on a plan's row, its label first (its column is past 80 columns)."""
        key = self._selected()
        plan = self._history[1].get(int(key[1:])) if key and key.startswith("p") else None
        self.query_one("#history-status", Static).update(
            (f"plan {plan.id}: {plan.label} · " if plan else "") + f"{self._shown} run(s) in {self.app.db_path} · "
            "Enter opens (a plan on Compare), d deletes, e exports, / filters")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._shown is not None:
            self._status()

    def _selected(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#runs", DataTable).focus()

    def action_filter(self) -> None:
        self.query_one("#history-filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#history-filter", Input).value = ""
        self.query_one("#runs", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self._selected()
        if key is None:
            return
        runs, _ = self._history
        if key.startswith("p"):
            plan = int(key[1:])
            self.app.open_compare(sorted(r.id for r in runs if r.plan_id == plan))
            return
        self.app.show_stored_run(int(key))

    def action_delete(self) -> None:
        key = self._selected()
        if key is None or self.app.refuses("delete runs"):
            return
        if key.startswith("p"):
            self.notify("a plan is deleted run by run: pick one of its runs")
            return
        run_id = int(key)
        if self._pending_delete != run_id:
            self._pending_delete = run_id
            self.notify(f"press d again to delete run {run_id} and all it measured")
            return
        self._pending_delete = None
        db = self.app.db_path

        def delete() -> None:
            from tuibench.core.store import ResultsStore

            with ResultsStore.open(db, create=False) as store:
                store.delete_run(run_id)

        def deleted(_) -> None:
            self.notify(f"run {run_id} deleted")
            self.again()

        self.load(delete, deleted, group="delete")

    def action_export(self) -> None:
        key = self._selected()
        if key is None:
            return
        db = self.app.db_path

        def write() -> Path:
            import msgspec

            from tuibench.core.store import ResultsStore
            from tuibench.report.comparison import load_document, to_json

            with ResultsStore.open(db, create=False) as store:
                if key.startswith("p"):
                    path = Path.cwd() / f"tuibench-plan-{key[1:]}.json"
                    path.write_bytes(to_json(load_document(store, int(key[1:]))[0]))
                    return path
                run_id = int(key)
                path = Path.cwd() / f"tuibench-run-{run_id}.json"
                document = {"run": store.get_run(run_id), "module_profiles": store.module_profiles(run_id)}
            path.write_bytes(msgspec.json.format(msgspec.json.encode(document)) + b"\n")
            return path

        self.load(write, lambda path: self.notify(f"written to {path}"), group="export")

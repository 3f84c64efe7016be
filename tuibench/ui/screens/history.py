"""History: the runs in the results store. Filter, open, delete (asked twice), export as JSON."""

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from tuibench.core.units import NA, fmt
from tuibench.ui.screens.base import TuibenchScreen

COLUMNS = ("id", "when (UTC)", "status", "library", "model", "dataset", "scenario", "reqs", "tok/s")


def run_matches(run, text: str) -> bool:
    """Every word of the filter appears in the run's id, status, library, model, dataset or scenario."""
    haystack = " ".join(str(v) for v in (run.id, run.status, run.library, run.model, run.dataset, run.scenario)).lower()
    return all(word in haystack for word in text.lower().split())


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
            yield Input(placeholder="filter: library, model, dataset, status…", id="history-filter")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static("", id="history-status")

    def on_mount(self) -> None:
        self._pending_delete: int | None = None
        self.query_one("#runs", DataTable).add_columns(*COLUMNS)
        super().on_mount()

    def version(self) -> object:
        return self.app.generation, self.app.state.status  # a run started or ended

    def _runs(self):
        from tuibench.core.store import ResultsStore

        if not Path(self.app.db_path).exists():
            return []
        with ResultsStore.open(self.app.db_path, create=False) as store:
            return store.list_runs()

    def redraw(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear()
        text = self.query_one("#history-filter", Input).value
        runs = [r for r in self._runs() if run_matches(r, text)]
        for run in runs:
            metrics = run.metrics
            table.add_row(
                str(run.id), run.created_at[5:16].replace("T", " "), run.status, run.library, run.model, run.dataset,
                run.scenario, str(metrics.completed) if metrics else NA,
                fmt(metrics.output_throughput_tok_s if metrics else None, 1), key=str(run.id),
            )
        self.query_one("#history-status", Static).update(
            f"{len(runs)} run(s) in {self.app.db_path} · Enter opens, d deletes, e exports, / filters")

    def _selected(self) -> int | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._seen_version = -1
        self._maybe_redraw()

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
        run_id = self._selected()
        if run_id is None:
            return
        from tuibench.core.store import ResultsStore

        with ResultsStore.open(self.app.db_path, create=False) as store:
            scenario = store.get_run(run_id).run.scenario
        self.app.show_stored_run(run_id)
        if scenario == "profile":
            self.app.switch_mode("modules")

    def action_delete(self) -> None:
        run_id = self._selected()
        if run_id is None:
            return
        if self._pending_delete != run_id:
            self._pending_delete = run_id
            self.notify(f"press d again to delete run {run_id} and all it measured")
            return
        from tuibench.core.store import ResultsStore

        with ResultsStore.open(self.app.db_path, create=False) as store:
            store.delete_run(run_id)
        self._pending_delete = None
        self.notify(f"run {run_id} deleted")
        self._seen_version = -1
        self._maybe_redraw()

    def action_export(self) -> None:
        import msgspec

        from tuibench.core.store import ResultsStore

        run_id = self._selected()
        if run_id is None:
            return
        path = Path.cwd() / f"tuibench-run-{run_id}.json"
        with ResultsStore.open(self.app.db_path, create=False) as store:
            document = {"run": store.get_run(run_id), "module_profiles": store.module_profiles(run_id)}
        path.write_bytes(msgspec.json.format(msgspec.json.encode(document)) + b"\n")
        self.notify(f"run {run_id} written to {path}")

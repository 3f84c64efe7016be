"""Compare: pick runs (space), see their metrics side by side with the difference to the first, and the
throughput–latency curves of serving runs (one curve per library and sweep)."""

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from tuibench.core.metrics import RunMetrics
from tuibench.core.units import NA, fmt
from tuibench.ui.screens.base import TuibenchScreen
from tuibench.ui.widgets.charts import Chart

# (label, how to read it from RunMetrics, higher is better)
METRICS = (
    ("out tok/s", lambda m: m.output_throughput_tok_s, True),
    ("total tok/s", lambda m: m.total_throughput_tok_s, True),
    ("req/s", lambda m: m.request_throughput_rps, True),
    ("TTFT p50 ms", lambda m: m.ttft_ms.p50 if m.ttft_ms else None, False),
    ("TTFT p99 ms", lambda m: m.ttft_ms.p99 if m.ttft_ms else None, False),
    ("TPOT p50 ms", lambda m: m.tpot_ms.p50 if m.tpot_ms else None, False),
    ("TPOT p99 ms", lambda m: m.tpot_ms.p99 if m.tpot_ms else None, False),
    ("E2EL p50 ms", lambda m: m.e2el_ms.p50 if m.e2el_ms else None, False),
    ("requests ok", lambda m: m.completed, True),
)


def difference(value: float | None, base: float | None, higher_is_better: bool) -> str:
    """'+12%' in green when better than the base, red when worse."""
    if value is None or not base:
        return ""
    change = 100.0 * (value - base) / base
    better = change > 0 if higher_is_better else change < 0
    colour = "green" if better else "red" if change else ""
    return f" [{colour}]{change:+.0f}%[/]" if colour else " ±0%"


def curves(runs) -> list[tuple[str, list[float], list[float]]]:
    """Serving runs as throughput–latency curves: achieved req/s against TTFT p50, per library and sweep."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        m = run.metrics
        if run.scenario != "serving" or m is None or m.request_throughput_rps is None or m.ttft_ms is None:
            continue
        label = f"{run.library} {run.spec.serving.sweep or ''}".strip()
        groups.setdefault(label, []).append((m.request_throughput_rps, m.ttft_ms.p50))
    return [(label, [x for x, _ in sorted(points)], [y for _, y in sorted(points)]) for label, points in groups.items()]


class CompareScreen(TuibenchScreen):
    AUTO_FOCUS = "#compare-runs"  # the list, not the first input: keys act on it at once
    BINDINGS = [
        Binding("space", "toggle", "Pick"),
        Binding("a", "pick_sweep", "Pick sweep"),
        Binding("c", "clear", "Clear picks"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="compare"):
            yield DataTable(id="compare-runs", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="compare-bottom"):
                yield DataTable(id="compare-metrics", show_cursor=False)
                yield Chart("TTFT p50 vs req/s", xlabel="req/s", ylabel="ms", id="curves")
            yield Static("space picks a run, a picks its whole sweep, c clears", id="compare-help")

    def on_mount(self) -> None:
        self.picked: list[int] = []
        self.query_one("#compare-runs", DataTable).add_columns("", "id", "status", "library", "dataset", "scenario",
                                                                "rate", "tok/s")
        super().on_mount()

    def version(self) -> object:
        return self.app.generation, self.app.state.status, tuple(self.picked)

    def _runs(self):
        from tuibench.core.store import ResultsStore

        if not Path(self.app.db_path).exists():
            return []
        with ResultsStore.open(self.app.db_path, create=False) as store:
            return [r for r in store.list_runs() if r.scenario != "profile"]

    def redraw(self) -> None:
        runs = self._runs()
        self._by_id = {r.id: r for r in runs}
        self.picked = [i for i in self.picked if i in self._by_id]
        table = self.query_one("#compare-runs", DataTable)
        cursor = table.cursor_row
        table.clear()
        for run in runs:
            m = run.metrics
            rate = run.spec.serving.request_rate if run.scenario == "serving" else None
            table.add_row("●" if run.id in self.picked else " ", str(run.id), run.status, run.library, run.dataset,
                          run.scenario, NA if rate is None else f"{rate:g}",
                          fmt(m.output_throughput_tok_s if m else None, 1), key=str(run.id))
        if runs:
            table.move_cursor(row=min(cursor, len(runs) - 1))
        self._metrics_table()
        self.query_one("#curves", Chart).show(curves([self._by_id[i] for i in self.picked]) or curves(runs))

    def _metrics_table(self) -> None:
        table = self.query_one("#compare-metrics", DataTable)
        table.clear(columns=True)
        picked = [self._by_id[i] for i in self.picked]
        table.add_column("metric")
        for run in picked:
            table.add_column(f"#{run.id} {run.library}")
        if not picked:
            return
        base: RunMetrics | None = picked[0].metrics
        for label, read, higher in METRICS:
            cells = []
            for index, run in enumerate(picked):
                value = read(run.metrics) if run.metrics else None
                delta = difference(value, read(base) if base else None, higher) if index else ""
                cells.append(fmt(value, 1) + delta)
            table.add_row(label, *cells)

    def _selected(self) -> int | None:
        table = self.query_one("#compare-runs", DataTable)
        if table.row_count == 0:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_toggle(self) -> None:
        run_id = self._selected()
        if run_id is None:
            return
        self.picked.remove(run_id) if run_id in self.picked else self.picked.append(run_id)
        self._maybe_redraw()

    def action_pick_sweep(self) -> None:
        run_id = self._selected()
        sweep = self._by_id[run_id].spec.serving.sweep if run_id is not None else None
        if not sweep:
            self.notify("this run is not part of a --rates sweep")
            return
        self.picked = sorted(set(self.picked) | {r.id for r in self._by_id.values() if r.spec.serving.sweep == sweep})
        self._maybe_redraw()

    def action_clear(self) -> None:
        self.picked = []
        self._maybe_redraw()

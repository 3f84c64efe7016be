"""Compare: runs side by side, per workload, the libraries as columns, best marked, ratios to a baseline.

The runs are picked with space (a picks a whole plan); a plan that ends in the app opens here with its
runs picked. g steps through the workloads (dataset, scenario, rate) the picks cover, b through the
baselines, e explains the picks' plans coarse to fine (the step gap between two libraries' profiles as a
waterfall by module category, g through the shapes; each library's time per token against its decode step), and f
writes the paper's figures for the picks. The chart is TTFT against the achieved
request rate of each library's serving sweep, or output throughput per library offline; for the probes of a
capacity search, the objective against the probed rate with the SLO's limit, under the verdict.
"""

from collections.abc import Sequence
from pathlib import Path

from rich.console import Group as Renderables
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from tuibench.analysis.attribution import Explanation
from tuibench.core.capacity import Capacity, verdict
from tuibench.core.catalogue import BY_KEY, LATENCY_OF, REQUEST_RATE
from tuibench.core.plan import rate_label
from tuibench.core.side_by_side import Comparison, Group, compare
from tuibench.report.comparison import cell_text, column_header, document_of, explanation_of
from tuibench.report.explain import attribution_title, waterfall
from tuibench.report.figures import write_figures
from tuibench.report.tables import status_text
from tuibench.ui.screens.base import TuibenchScreen, read_store
from tuibench.ui.widgets.charts import Chart

THROUGHPUT = BY_KEY["output_throughput_tok_s"]  # the runs' column, and offline, the chart's bars
# Serving: the paper's latency figure, TTFT p50 against the achieved request rate.
CURVE_X, CURVE_Y = BY_KEY["request_throughput_rps"], BY_KEY["ttft_p50_ms"]
TPOT = LATENCY_OF["tpot_ms"]


def curves(comparison: Comparison, dataset: str) -> list[tuple[str, list[float], list[float]]]:
    """Each library's serving sweep on `dataset`: achieved req/s against TTFT p50, the paper's latency figure."""
    lines = []
    for sweep in comparison.sweeps:
        points = sorted((x, y) for p in sweep.points if sweep.dataset == dataset
                        and (x := getattr(p, CURVE_X.key)) is not None and (y := getattr(p, CURVE_Y.key)) is not None)
        if points:
            lines.append((sweep.label, [x for x, _ in points], [y for _, y in points]))
    return lines


def capacity_lines(capacities: Sequence[Capacity]) -> list[tuple[str, list[float], list[float]]]:
    """Each library's probes: the first objective's latency against the probed rate, and the objective's limit
    across them (the SLO line)."""
    objective = capacities[0].objectives[0]
    lines = []
    for capacity in capacities:
        points = sorted((p.rate_rps, p.measured_ms[objective.label]) for p in capacity.probes
                        if p.measured_ms.get(objective.label) is not None)
        if points:
            lines.append((capacity.library, [x for x, _ in points], [y for _, y in points]))
    rates = [x for _, xs, _ in lines for x in xs]
    if rates:
        lines.append((f"SLO {objective.label}", [min(rates), max(rates)], [objective.limit_ms] * 2))
    return lines


def read_runs(db_path: Path) -> tuple[list, dict[int, list[Capacity]]]:
    """Every stored run but profiles, newest first, and the capacity steps of each plan."""
    return read_store(db_path, lambda store: ([r for r in store.list_runs() if r.scenario != "profile"],
                                              store.capacities()), ([], {}))


class CompareScreen(TuibenchScreen):
    AUTO_FOCUS = "#compare-runs"  # the list, not the first input: keys act on it at once
    # Under 120 columns the side-by-side table takes the whole width; the chart comes back on a wider terminal.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    # Picking is spelled out in the line under the tables: the footer keeps room for Help, Theme and Quit at 80.
    BINDINGS = [
        Binding("space", "toggle", "Pick", show=False),
        Binding("a", "pick_plan", "Pick plan", show=False),
        Binding("c", "clear", "Clear", show=False),
        Binding("g", "next_group", "Workload"),
        Binding("b", "next_baseline", "Baseline"),
        Binding("e", "explain", "Explain"),
        Binding("f", "figures", "Figures"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="compare"):
            yield Static("", id="compare-title")
            yield DataTable(id="compare-runs", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="compare-bottom"):
                yield DataTable(id="compare-metrics", show_cursor=False)
                yield Chart("", id="curves")
            yield Static("", id="compare-explain")
            yield Static("space picks a run, a its plan, c clears · g workload, b baseline · e explain · f figures",
                         id="compare-help")

    def on_mount(self) -> None:
        self.picked: list[int] = []
        self.group_index = 0
        self.baseline: str | None = None
        self.runs: list = []  # every stored run but profiles, newest first, as last read
        self.capacities: dict[int, list[Capacity]] = {}  # each plan's capacity steps, as last read
        self._seen_pick = -1  # the app's compare_generation these picks came from
        self.explaining = False  # e: the picks' plans explained coarse to fine, in place of the table and chart
        self.explanation: Explanation | None = None
        self.query_one("#compare-runs", DataTable).add_columns("", "id", "plan", "library", "dataset", "scenario",
                                                                "rate", "status", THROUGHPUT.column)
        super().on_mount()

    def version(self) -> object:
        plan = self.app.plan_state
        return self.app.generation, plan.status, sum(s.run_id is not None for s in plan.steps), self.app.compare_generation

    def redraw(self) -> None:
        self.load(lambda: read_runs(self.app.db_path), self._loaded)

    def _loaded(self, read: tuple[list, dict[int, list[Capacity]]]) -> None:
        runs, self.capacities = read
        self.runs = runs
        ids = {r.id for r in runs}
        if self._seen_pick != self.app.compare_generation:
            self._seen_pick = self.app.compare_generation
            self.picked, self.group_index, self.baseline = list(self.app.compare_runs), 0, None
        self.picked = [i for i in self.picked if i in ids]
        if not self.picked and runs:  # nothing picked yet: the newest plan of several runs, else nothing
            plan = next((r.plan_id for r in runs if r.plan_id and sum(x.plan_id == r.plan_id for x in runs) > 1), None)
            self.picked = sorted(r.id for r in runs if plan and r.plan_id == plan)
        self.render_picks()

    # -- drawing ------------------------------------------------------------------------------------

    def render_picks(self) -> None:
        table = self.query_one("#compare-runs", DataTable)
        cursor = table.cursor_row
        table.clear()
        for run in self.runs:
            m = run.metrics
            table.add_row("●" if run.id in self.picked else " ", str(run.id), str(run.plan_id or ""), run.library,
                          run.dataset, run.scenario,
                          rate_label(run.spec.serving.request_rate) if run.scenario == "serving" else "",
                          status_text(run.status), THROUGHPUT.cell(THROUGHPUT.read(m) if m else None),
                          key=str(run.id))
        if self.runs:
            table.move_cursor(row=min(cursor, len(self.runs) - 1))
        by_id = {r.id: r for r in self.runs}
        comparison = compare([by_id[i] for i in self.picked], self.baseline)
        self.comparison = comparison
        groups = comparison.groups
        title = self.query_one("#compare-title", Static)
        metrics = self.query_one("#compare-metrics", DataTable)
        metrics.clear(columns=True)
        self.set_class(not groups, "-nothing-picked")  # then the picker has the screen: no empty panel below it
        if not groups:
            title.update("pick runs with space (a picks a whole plan) to see them side by side")
            self.query_one("#curves", Chart).show([])
            return
        group = groups[self.group_index % len(groups)]
        text = (f"[b]{group.title}[/b] · workload {self.group_index % len(groups) + 1}/{len(groups)} · "
                f"ratios to {comparison.baseline}, ≈ within noise · ★ best"
                + (" · ± 95 % CI over repeats" if any(len(c.run_ids) > 1 for c in group.columns) else "")
                + (" · ⚠ validity warnings: runs show" if any(c.warnings for c in group.columns) else ""))
        plans = {r.plan_id for r in self.runs if r.id in self.picked}
        searched = [c for plan in sorted(p for p in plans if p) for c in self.capacities.get(plan, [])
                    if c.dataset == group.dataset] if group.scenario == "serving" else []
        if searched:  # the picks are probes of a capacity search: the verdict says what they found
            text += f"\n[b]{verdict(searched)}[/b]"
        title.update(text)
        self._metrics(metrics, group)
        self._chart(comparison, group, searched)

    def _metrics(self, table: DataTable, group: Group) -> None:
        table.add_column("metric")
        for index in range(len(group.columns)):
            table.add_column(column_header(group, index).replace("\n", " "))
        for row_index, row in enumerate(group.rows):
            table.add_row(row.label, *(cell_text(group, row_index, c) for c in range(len(group.columns))))

    def _chart(self, comparison: Comparison, group: Group, searched: Sequence[Capacity] = ()) -> None:
        chart = self.query_one("#curves", Chart)
        lines = curves(comparison, group.dataset) if group.scenario == "serving" else []
        if searched:
            objective = searched[0].objectives[0]
            latency = LATENCY_OF[f"{objective.latency}_ms"]
            chart.set_labels(f"{latency.short} {objective.quantile} vs probed {REQUEST_RATE.unit}", REQUEST_RATE.unit,
                             latency.unit)
            chart.show(capacity_lines(searched))
        elif lines:
            chart.set_labels(f"{CURVE_Y.label} vs {CURVE_X.column}", CURVE_X.unit, CURVE_Y.unit)
            chart.show(lines)
        else:
            chart.set_labels(THROUGHPUT.label, "", THROUGHPUT.unit)
            row = next((r for r in group.rows if r.key == THROUGHPUT.key), None)
            chart.bars([c.label for c in group.columns], [cell.value or 0.0 for cell in row.cells] if row else [])

    # -- keys ---------------------------------------------------------------------------------------

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
        self.render_picks()

    def action_pick_plan(self) -> None:
        run_id = self._selected()
        plan = next((r.plan_id for r in self.runs if r.id == run_id), None)
        if plan is None:
            self.notify("this run is not part of a plan")
            return
        self.picked = sorted(set(self.picked) | {r.id for r in self.runs if r.plan_id == plan})
        self.render_picks()

    def action_clear(self) -> None:
        self.picked = []
        self.render_picks()

    def action_next_group(self) -> None:
        self.group_index += 1
        if self.explaining:
            self._show_explanation(self.explanation)
        else:
            self.render_picks()

    def action_explain(self) -> None:
        self.explaining = not self.explaining
        self.query_one("#compare-bottom").display = not self.explaining
        self.query_one("#compare-explain").display = self.explaining
        if self.explaining:
            picked, db, baseline = list(self.picked), self.app.db_path, self.comparison.baseline
            self.load(lambda: read_explanation(db, picked, baseline), self._show_explanation, group="explain")

    def _show_explanation(self, explanation: Explanation | None) -> None:
        self.explanation = explanation
        view = self.query_one("#compare-explain", Static)
        if explanation is None or not (explanation.attributions or explanation.coarse_fine):
            view.update("nothing to explain in these picks' plans: a plan with profile steps of two libraries "
                        "explains the gap between them, one with offline and profile steps a library's time per "
                        "token (e: back)")
            return
        view.update(explanation_view(explanation, self.group_index, max(20, self.size.width - 36)))

    def action_next_baseline(self) -> None:
        libraries = list(dict.fromkeys(c.library for g in self.comparison.groups for c in g.columns))
        if not libraries:
            return
        current = self.comparison.baseline
        self.baseline = libraries[(libraries.index(current) + 1) % len(libraries) if current in libraries else 0]
        self.render_picks()

    def action_figures(self) -> None:
        if not self.picked:
            self.notify("pick runs first (space, or a for a whole plan)")
            return
        picked, db = list(self.picked), self.app.db_path
        plans = {r.plan_id for r in self.runs if r.id in picked}
        name = f"plan-{plans.pop()}" if len(plans) == 1 and None not in plans else f"runs-{'-'.join(map(str, picked))}"
        out = Path.cwd() / "tuibench-figures" / name
        baseline = self.comparison.baseline
        self.notify(f"drawing figures into {out} …")
        self.load(lambda: write_figures_of(db, picked, baseline, out),
                  lambda files: self.notify(f"{len(files)} files written to {out}"), group="figures")


def read_explanation(db_path: Path, run_ids: list[int], baseline: str | None) -> Explanation | None:
    """Coarse to fine for the picked runs and the rest of their plans (profiles included), in a thread."""
    def read(store) -> Explanation | None:
        picked = [store.run_row(i) for i in run_ids]
        plans = sorted({r.plan_id for r in picked if r.plan_id})
        runs = {r.id: r for r in picked} | {r.id: r for plan in plans for r in store.get_plan(plan).runs}
        profiles = {i: store.module_profiles(i) for i, r in runs.items() if r.scenario == "profile"}
        return explanation_of(list(runs.values()), profiles, baseline)

    return read_store(db_path, read, None)


def explanation_view(explanation: Explanation, index: int, bar_width: int) -> Renderables:
    """One attribution as a waterfall (g steps through them) and each library's time per token."""
    parts: list = []
    if explanation.attributions:
        attribution = explanation.attributions[index % len(explanation.attributions)]
        parts.append(Text.from_markup(f"[b]{escape(attribution_title(attribution))}[/b] · "
                                      f"{index % len(explanation.attributions) + 1}/{len(explanation.attributions)}"))
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, max_width=22, overflow="ellipsis")
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True)
        for label, ms, bar in waterfall(attribution, bar_width, max_rows=6):
            table.add_row(label, ms, bar)
        parts.append(table)
    for item in explanation.coarse_fine:
        parts.append(Text(f"{item.library}: {TPOT.short} {item.tpot_ms:,.2f} {TPOT.unit} = forward "
                          f"{item.forward_ms:,.2f} + outside "
                          f"{item.overhead_ms:+,.2f} ({100 * item.overhead_ms / item.tpot_ms:.0f} %) · batch "
                          f"{item.batch}, context {item.profile_context:,.0f}", no_wrap=True, overflow="ellipsis"))
    return Renderables(*parts)


def write_figures_of(db_path: Path, run_ids: list[int], baseline: str | None, out: Path) -> list[Path]:
    """The figures of these stored runs (the paper's, as `compare --figures` draws them), in a thread."""
    from tuibench.core.store import ResultsStore

    with ResultsStore.open(db_path, create=False) as store:
        runs = [store.run_row(i) for i in run_ids]
        profiles = {r.id: store.module_profiles(r.id) for r in runs if r.scenario == "profile"}
    return write_figures(document_of(runs, profiles, baseline=baseline), out)

"""Modules: the per-module timing tree of a profile run, with its theory; colour by bound, sortable."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tuibench.core.module_profile import ModuleNode, ModuleProfile
from tuibench.core.units import NA
from tuibench.report.module_tables import BOUND_SHORT, NODE_COLUMNS, node_cells, profile_title, tree_rows
from tuibench.ui.screens.base import TuibenchScreen, read_store

SORTS = ("tree", "time", "intensity")


def rows_of(profile: ModuleProfile, sort: str = "tree", per_layer: bool = False) -> list[tuple[int, ModuleNode]]:
    """(depth, node) in display order: the tree (layers folded, or each layer too), or the leaves sorted."""
    rows = tree_rows(profile.root, per_layer)
    if sort == "tree":
        return rows
    leaves = [(0, node) for _, node in rows if node.is_leaf]
    if sort == "time":
        return sorted(leaves, key=lambda row: -row[1].time_ms)
    return sorted(leaves, key=lambda row: -(row[1].cost.intensity or 0.0) if row[1].cost else 0.0)


class ModulesScreen(TuibenchScreen):
    AUTO_FOCUS = "#module-table"  # the list, not the first input: keys act on it at once
    BINDINGS = [
        Binding("p", "toggle_phase", "Prefill/decode"),
        Binding("l", "next_length", "Length"),
        Binding("s", "next_sort", "Sort"),
        Binding("x", "toggle_layers", "Per layer"),
        # In Help and the line under the tree: the footer keeps room for Help, Theme and Quit at 80 columns.
        Binding("left_square_bracket", "other_run(1)", "Older run", key_display="[", show=False),
        Binding("right_square_bracket", "other_run(-1)", "Newer run", key_display="]", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="modules"):
            yield Static("", id="modules-title")
            yield DataTable(id="module-table", zebra_stripes=True, cursor_type="row")
            yield Static("", id="modules-legend")

    def on_mount(self) -> None:
        self.phase, self.length_index, self.sort, self.per_layer = "prefill", 0, "tree", False
        self.stored_offset = 0  # 0: the current run's profiles if it has any, else the newest stored one
        self._shown: tuple[str, list[ModuleProfile]] | None = None
        self.query_one("#module-table", DataTable).add_columns(*NODE_COLUMNS)
        super().on_mount()

    # -- which profiles --------------------------------------------------------------------------

    def version(self) -> object:
        return len(self.app.state.profiles), self.app.generation, self.stored_offset  # a new profile, or another run

    def redraw(self) -> None:
        state = self.app.state
        if state.profiles and self.stored_offset == 0:
            self._show(f"run {state.run_id or '(running)'}", list(state.profiles))
            return
        skip = self.stored_offset - 1 if state.profiles else self.stored_offset
        self.load(lambda: read_profile_run(self.app.db_path, skip), lambda found: self._show(*found))

    def _show(self, label: str, profiles: list[ModuleProfile]) -> None:
        self._shown = (label, profiles)
        title = self.query_one("#modules-title", Static)
        table = self.query_one("#module-table", DataTable)
        table.clear()
        if not profiles:
            title.update("no module profile yet: pick the profile scenario in Setup (1), or `tuibench profile`")
            return
        lengths = sorted({p.input_len for p in profiles})
        length = lengths[self.length_index % len(lengths)]
        profile = next((p for p in profiles if p.input_len == length and p.phase == self.phase),
                       next(p for p in profiles if p.input_len == length))
        title.update(f"{label} · {profile_title(profile)}\n"
                     f"lengths {', '.join(map(str, lengths))} · sort: {self.sort}"
                     + (" · every layer" if self.per_layer else ""))
        colours = self.app.get_css_variables()
        bound_colour = {"memory": colours.get("memory-bound", "yellow"), "compute": colours.get("compute-bound", "cyan")}
        for depth, node in rows_of(profile, self.sort, self.per_layer):
            bound, cells = node_cells(profile, node)
            style = bound_colour.get(bound, "") if bound else ""
            table.add_row(Text(" " * depth + node.name, style=style, overflow="ellipsis", no_wrap=True), *cells[:-1],
                          Text(BOUND_SHORT.get(bound, NA), style=style), cells[-1])
        roofline = profile.roofline
        legend = (f"roofline: {roofline.device} · {roofline.peak_flops_s / 1e9:,.1f} GFLOP/s · "
                  f"{roofline.bandwidth_bytes_s / 1e9:,.1f} GB/s · ridge {roofline.ridge:.1f} FLOP/B") if roofline else \
            "no roofline for this device"
        self.query_one("#modules-legend", Static).update(
            f"{legend} · [{bound_colour['memory']}]memory-bound[/] [{bound_colour['compute']}]compute-bound[/] · "
            "\\[ ] older, newer run")

    # -- keys --------------------------------------------------------------------------------------

    def _again(self) -> None:
        """A key changed how the profiles are shown, not which: draw the ones at hand again."""
        if getattr(self, "_shown", None) is not None:
            self._show(*self._shown)

    def action_toggle_phase(self) -> None:
        self.phase = "decode" if self.phase == "prefill" else "prefill"
        self._again()

    def action_next_length(self) -> None:
        self.length_index += 1
        self._again()

    def action_next_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._again()

    def action_toggle_layers(self) -> None:
        self.per_layer = not self.per_layer
        self._again()

    def action_other_run(self, step: int) -> None:
        self.stored_offset = max(0, self.stored_offset + step)
        self.again()


def read_profile_run(db_path, skip: int) -> tuple[str, list[ModuleProfile]]:
    """The profiles of the stored profile run `skip` places from the newest: ("run N", profiles), or none."""
    def read(store) -> tuple[str, list[ModuleProfile]]:
        runs = [r for r in store.list_runs() if r.scenario == "profile"]
        if not runs:
            return "", []
        run = runs[min(max(skip, 0), len(runs) - 1)]
        return f"run {run.id}", store.module_profiles(run.id)

    return read_store(db_path, read, ("", []))

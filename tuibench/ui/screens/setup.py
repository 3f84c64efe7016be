"""Setup: a plan to run. Tick libraries (each shown available or not, with the reason), scenarios and datasets,
set the parameters, or pick a ready-made plan file; the dataset under the cursor shows its length histogram.
The last choice is remembered; r starts the plan."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from tuibench.core.errors import UserError
from tuibench.ui.screens.base import TuibenchScreen
from tuibench.ui.settings import save_settings
from tuibench.ui.widgets.charts import Chart
from tuibench.ui.widgets.ticks import TickList

SCENARIOS = ("offline", "serving", "profile", "capacity")
NO_PLAN = ""  # the Select value for "the choices on this screen"


def dataset_names() -> list[str]:
    from tuibench.core.workload import SYNTHETIC, builtin_datasets

    return [*builtin_datasets(), *SYNTHETIC]


def libraries() -> list[tuple[str, bool, str]]:
    """(name, available, reason) for every library the app can run (an endpoint needs the CLI's --endpoint)."""
    from tuibench.runner.plans import library_choices

    return [row for row in library_choices() if row[0] != "endpoint"]


class SetupScreen(TuibenchScreen):
    BINDINGS = [Binding("r", "start", "Run")]

    def compose_body(self) -> ComposeResult:
        from tuibench.models.resolve import known_models
        from tuibench.runner.plans import shipped_plans

        choice = self.app.settings.setup
        models = known_models()
        if choice.model not in models:
            models.append(choice.model)
        plans = shipped_plans()
        found = libraries()
        with Horizontal(id="setup"):
            with Vertical(id="setup-left"):
                with VerticalScroll(id="setup-form"):
                    yield Label("plan file (or the choices below)")
                    yield Select([("the choices below", NO_PLAN), *((f"{name}: {label}", name) for name, label in plans.items())],
                                 value=choice.plan if choice.plan in plans else NO_PLAN, allow_blank=False, id="plan")
                    yield Label("model")
                    yield Select([(m, m) for m in models], value=choice.model, allow_blank=False, id="model")
                    with Horizontal(id="setup-picks"):
                        with Vertical():
                            yield Label("libraries")  # space ticks
                            yield TickList(
                                *(Selection(name if ok else f"{name} (not here)", name, ok and name in choice.libraries,
                                            disabled=not ok) for name, ok, _ in found), id="libraries")
                        with Vertical():
                            yield Label("scenarios")
                            yield TickList(*(Selection(name, name, name in choice.scenarios) for name in SCENARIOS),
                                                     id="scenarios")
                    # Why a library cannot run here, in full: a column of the picks is too narrow for it.
                    yield Static("\n".join(f"{name}: {reason}" for name, ok, reason in found if not ok),
                                 id="library-notes")
                    yield Label("datasets")
                    yield TickList(*(Selection(name, name, name in choice.datasets) for name in dataset_names()),
                                             id="datasets")
                    with Horizontal(classes="params"):
                        yield Label("requests")
                        yield Input(str(choice.num_requests), id="num-requests", type="integer")
                        yield Label("batch")
                        yield Input(str(choice.batch_size), id="batch-size", type="integer")
                    with Horizontal(classes="params"):
                        yield Label("rates/s")
                        yield Input(choice.rates, id="rates", placeholder="inf, or 1,2,4")
                        yield Label("lengths")
                        yield Input(choice.lengths, id="lengths", placeholder="32,128")
                    with Horizontal(classes="params"):
                        yield Label("repeat")  # rounds of the plan: every figure then with its 95 % interval
                        yield Input(str(choice.repeat), id="repeat", type="integer")
                        yield Label("ray")  # a cluster to run on: its head's host:port, or auto
                        yield Input(choice.ray_address, id="ray-address", placeholder="host:port, auto")
                    with Horizontal(classes="params"):
                        yield Label("slo")  # the capacity scenario's objectives
                        yield Input(choice.slo, id="slo", placeholder="ttft_p99=1000,tpot_p99=200")
                        yield Label("conc.")  # serving: requests in flight at most (empty: no limit)
                        yield Input(str(choice.max_concurrency or ""), id="max-concurrency", type="integer",
                                    placeholder="no limit")
                # Under the form, not at its end: at 80x24 the form scrolls, and Start and what is wrong stay in sight.
                with Horizontal(id="setup-actions"):
                    yield Button("Start (r)", id="start", variant="primary")
                    yield Static("", id="setup-error")
            with Vertical(id="setup-side"):
                yield Chart("input / output tokens", xlabel="tokens", id="histogram")
                yield Static("", id="dataset-summary")

    def on_mount(self) -> None:
        super().on_mount()
        datasets = self.query_one("#datasets", SelectionList)
        names = dataset_names()
        first = datasets.selected[0] if datasets.selected else names[0]
        datasets.highlighted = names.index(first)  # the histogram shows the highlighted dataset
        self._show_dataset(first)

    def on_selection_list_selection_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        if event.selection_list.id == "datasets":
            self._show_dataset(event.selection.value)

    def _show_dataset(self, name: str) -> None:
        from tuibench.core.workload import SYNTHETIC, dataset_from_arg, load_requests

        summary = self.query_one("#dataset-summary", Static)
        chart = self.query_one("#histogram", Chart)
        try:
            choice = self.app.settings.setup
            spec = dataset_from_arg(str(name), input_len=choice.input_len, output_len=choice.output_len)
            requests = load_requests(spec, 200 if spec.kind in SYNTHETIC else None, 0)
        except UserError as exc:
            summary.update(str(exc))
            return
        inputs = [r.input_tokens for r in requests]
        outputs = [r.output_tokens or 0 for r in requests]
        chart.histogram([("input", inputs), ("output", outputs)])
        summary.update(f"{name}: {len(requests)} requests · input mean {sum(inputs) / len(inputs):,.0f} "
                       f"(max {max(inputs):,}) · output mean {sum(outputs) / len(outputs):,.0f} (max {max(outputs):,})")

    def _choice(self):
        choice = self.app.settings.setup
        choice.plan = str(self.query_one("#plan", Select).value)
        choice.model = str(self.query_one("#model", Select).value)
        for name in ("libraries", "scenarios", "datasets"):
            setattr(choice, name, list(self.query_one(f"#{name}", SelectionList).selected))

        def number(widget_id: str) -> int | None:
            text = self.query_one(widget_id, Input).value.strip()
            try:
                return int(text) if text else None
            except ValueError:
                raise UserError(f"{widget_id.lstrip('#').replace('-', ' ')}: {text!r} is not a whole number") from None

        choice.num_requests = number("#num-requests") or choice.num_requests
        choice.batch_size = number("#batch-size") or choice.batch_size
        choice.repeat = number("#repeat") or choice.repeat
        choice.rates = self.query_one("#rates", Input).value.strip()
        choice.lengths = self.query_one("#lengths", Input).value.strip() or choice.lengths
        choice.ray_address = self.query_one("#ray-address", Input).value.strip()
        choice.slo = self.query_one("#slo", Input).value.strip()
        choice.max_concurrency = number("#max-concurrency")
        return choice

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    def action_start(self) -> None:
        from tuibench.runner.plans import build_plan

        error = self.query_one("#setup-error", Static)
        try:
            plan = build_plan(self._choice().request())
        except UserError as exc:
            error.update(f"[red]{exc}[/]")
            return
        skipped = {f"{s.spec.library}: {s.skip}" for s in plan.steps if s.skip}
        error.update("[dim]skipped " + "; ".join(sorted(skipped)) + "[/]" if skipped else "")
        save_settings(self.app.settings)
        self.app.start_plan(plan)

"""Setup: model, library (each with why it is or is not available), dataset with its length histogram,
scenario and its parameters. The last choice is remembered; Enter (or r) starts the run."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from tuibench.core.errors import UserError
from tuibench.ui.screens.base import TuibenchScreen
from tuibench.ui.settings import save_settings
from tuibench.ui.widgets.charts import Chart

SCENARIOS = ("offline", "serving", "profile")


def dataset_names() -> list[str]:
    from tuibench.core.workload import builtin_datasets

    return [*builtin_datasets(), "random"]


def libraries() -> list[tuple[str, bool, str]]:
    """(name, available, reason) for every library the app can run (an endpoint needs the CLI's --endpoint)."""
    from tuibench.backends import backend_class, backend_names

    rows = []
    for name in backend_names():
        if name == "endpoint":
            continue
        availability = backend_class(name).availability()
        rows.append((name, availability.ok, availability.reason))
    return rows


class SetupScreen(TuibenchScreen):
    BINDINGS = [Binding("r", "start", "Run"), Binding("enter", "start", "Run", show=False)]

    def compose_body(self) -> ComposeResult:
        from tuibench.models.resolve import known_models

        choice = self.app.settings.setup
        models = known_models()
        if choice.model not in models:
            models.append(choice.model)
        with Horizontal(id="setup"):
            with VerticalScroll(id="setup-form"):
                yield Label("model")
                yield Select([(m, m) for m in models], value=choice.model, allow_blank=False, id="model")
                yield Label("library")
                with RadioSet(id="library"):
                    for name, ok, reason in libraries():
                        label = name if ok else f"{name} · {reason}"
                        yield RadioButton(label, value=(name == choice.library and ok), disabled=not ok, name=name)
                yield Label("scenario")
                with RadioSet(id="scenario"):
                    for name in SCENARIOS:
                        yield RadioButton(name, value=name == choice.scenario, name=name)
                yield Label("dataset")
                datasets = dataset_names()
                yield Select([(d, d) for d in datasets], allow_blank=False, id="dataset",
                             value=choice.dataset if choice.dataset in datasets else datasets[0])
                with Horizontal(classes="params"):
                    yield Label("requests")
                    yield Input(str(choice.num_requests), id="num-requests", type="integer")
                    yield Label("batch")
                    yield Input(str(choice.batch_size), id="batch-size", type="integer")
                with Horizontal(classes="params"):
                    yield Label("rate/s")
                    yield Input("" if choice.request_rate is None else f"{choice.request_rate:g}", id="rate",
                                type="number", placeholder="inf")
                    yield Label("lengths")
                    yield Input(choice.lengths, id="lengths", placeholder="32,128")
                yield Button("Start (Enter)", id="start", variant="primary")
                yield Static("", id="setup-error")
            with Vertical(id="setup-side"):
                yield Chart("input / output tokens", xlabel="tokens", id="histogram")
                yield Static("", id="dataset-summary")

    def on_mount(self) -> None:
        super().on_mount()
        self._show_dataset(self.query_one("#dataset", Select).value)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "dataset":
            self._show_dataset(event.value)

    def _show_dataset(self, name) -> None:
        from tuibench.core.workload import dataset_from_arg, load_requests

        summary = self.query_one("#dataset-summary", Static)
        chart = self.query_one("#histogram", Chart)
        try:
            choice = self.app.settings.setup
            spec = dataset_from_arg(str(name), input_len=choice.input_len, output_len=choice.output_len)
            requests = load_requests(spec, 200 if spec.kind == "random" else None, 0)
        except UserError as exc:
            summary.update(str(exc))
            return
        inputs = [r.input_tokens for r in requests]
        outputs = [r.output_tokens or 0 for r in requests]
        chart.histogram([("input", inputs), ("output", outputs)])
        summary.update(f"{len(requests)} requests · input mean {sum(inputs) / len(inputs):,.0f} (max {max(inputs):,}) · "
                       f"output mean {sum(outputs) / len(outputs):,.0f} (max {max(outputs):,})")

    def _choice(self):
        choice = self.app.settings.setup
        choice.model = str(self.query_one("#model", Select).value)
        for group, attribute in (("#library", "library"), ("#scenario", "scenario")):
            pressed = self.query_one(group, RadioSet).pressed_button
            if pressed is not None:
                setattr(choice, attribute, pressed.name)
        choice.dataset = str(self.query_one("#dataset", Select).value)

        def number(widget_id: str, kind):
            text = self.query_one(widget_id, Input).value.strip()
            try:
                return kind(text) if text else None
            except ValueError:
                raise UserError(f"{widget_id.lstrip('#')}: {text!r} is not a number") from None

        choice.num_requests = number("#num-requests", int) or choice.num_requests
        choice.batch_size = number("#batch-size", int) or choice.batch_size
        rate = number("#rate", float)
        choice.request_rate = rate if rate and rate != float("inf") else None
        choice.lengths = self.query_one("#lengths", Input).value.strip() or choice.lengths
        return choice

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    def action_start(self) -> None:
        from tuibench.runner.environment import default_threads
        from tuibench.ui.runspec import spec_from_choice

        error = self.query_one("#setup-error", Static)
        try:
            choice = self._choice()
            spec, requests = spec_from_choice(choice, default_threads())
        except UserError as exc:
            error.update(f"[red]{exc}[/]")
            return
        error.update("")
        save_settings(self.app.settings)
        self.app.start_run(spec, requests)

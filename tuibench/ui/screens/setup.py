"""Setup: a plan to run. Every option a CLI user has, as a form generated from the option schema: libraries (each
shown available or not, with the reason), scenarios and datasets ticked, the rest typed or picked; or a
ready-made plan file. The dataset under the cursor shows its length histogram, the focused field its help. The
last choice is remembered; r starts the plan."""

from textual.app import ComposeResult
from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Label, Select, SelectionList, Static

from tuibench.core.errors import UserError
from tuibench.core.options import OptionError, OptionField
from tuibench.ui.screens.base import TuibenchScreen
from tuibench.ui.settings import save_settings
from tuibench.ui.widgets.charts import Chart
from tuibench.ui.widgets.option_form import Choice, OptionForm

NO_PLAN = ""  # the Select value for "the choices on this screen"


def dataset_names() -> list[str]:
    from tuibench.core.workload import SYNTHETIC, builtin_datasets

    return [*builtin_datasets(), *SYNTHETIC]


class SetupScreen(TuibenchScreen):
    BINDINGS = [Binding("r", "start", "Run")]

    def compose_body(self) -> ComposeResult:
        from tuibench.core.plan import plan_options
        from tuibench.core.planfiles import shipped_plans

        settings = self.app.settings
        plans = shipped_plans()
        with Horizontal(id="setup"):
            with Vertical(id="setup-left"):
                with VerticalScroll(id="setup-form"):
                    yield Label("plan file (or the choices below)")
                    # A plan's name is its file's; its label is in the list of plans (`compare list`), not here.
                    yield Select([("the choices below", NO_PLAN), *((name, name) for name in plans)],
                                 value=settings.plan if settings.plan in plans else NO_PLAN, allow_blank=False,
                                 id="plan", compact=True)
                    yield OptionForm((f for f in plan_options() if not f.opt.no_setup), settings.setup,
                                     self._choices, notes={"libraries": self._library_notes()}, id="options")
                # Under the form, not at its end: at 80x24 the form scrolls, and Start and what is wrong stay in sight.
                yield Static("", id="option-help")
                with Horizontal(id="setup-actions"):
                    yield Button("Start (r)", id="start", variant="primary", compact=True)
                    yield Static("", id="setup-error")
            with Vertical(id="setup-side"):
                yield Chart("input / output tokens", xlabel="tokens", id="histogram")
                yield Static("", id="dataset-summary")

    def _choices(self, field: OptionField) -> list[Choice] | None:
        """The tick lists whose choices are known only here: models, libraries, datasets. Until the run service
        has said which libraries this machine has, the list holds the picked ones."""
        if field.key == "libraries":
            rows = self.app.library_rows
            if rows is None:
                return [(name, name, True) for name in self.app.settings.setup.get("libraries", ["transformers"])]
            return [(row.name, row.name, row.available) for row in rows]
        if field.key == "datasets":
            return [(name, name, True) for name in dataset_names()]
        if field.key == "models":
            from tuibench.models.resolve import known_models

            names = known_models()
            names += [m for m in self.app.settings.setup.get("models", ()) if m not in names]
            return [(name, name, True) for name in names]
        return None

    def _library_notes(self) -> str:
        """Why a library cannot run here, in full, under their list: a tick's line is too narrow for it."""
        rows = self.app.library_rows or []
        return "\n".join(f"{row.name}: {row.reason}" for row in rows if not row.available)

    @work(thread=True, exclusive=True, group="libraries")
    def _ask_libraries(self) -> None:
        """The libraries this machine has, from the run service (a process of its own: it may take a second)."""
        from tuibench.ui.run_service import ServiceGone

        try:
            rows = self.app.run_service.libraries()
        except ServiceGone as exc:
            self.app.call_from_thread(self.query_one("#setup-error", Static).update, f"[red]{exc}[/]")
            return
        self.app.call_from_thread(self._show_libraries, rows)

    def _show_libraries(self, rows) -> None:
        self.app.library_rows = rows
        form = self.query_one(OptionForm)
        form.set_choices("libraries", self._choices(form.field("libraries")), self._library_notes())

    def on_mount(self) -> None:
        super().on_mount()
        if self.app.library_rows is None:
            self._ask_libraries()
        datasets = self.query_one("#datasets", SelectionList)
        names = dataset_names()
        first = datasets.selected[0] if datasets.selected else names[0]
        datasets.highlighted = names.index(first)  # the histogram shows the highlighted dataset
        self._show_dataset(first)
        self.query_one(OptionForm).open_groups(set(self.query_one("#scenarios", SelectionList).selected))

    def on_selection_list_selection_highlighted(self, event: SelectionList.SelectionHighlighted) -> None:
        if event.selection_list.id == "datasets":
            self._show_dataset(event.selection.value)

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        if event.selection_list.id == "scenarios":
            self.query_one(OptionForm).open_groups(set(event.selection_list.selected))

    def on_descendant_focus(self, event) -> None:
        self.query_one("#option-help", Static).update(self.query_one(OptionForm).help_of(event.widget))

    def _show_dataset(self, name: str) -> None:
        from tuibench.core.workload import SYNTHETIC, dataset_from_arg, load_requests

        summary = self.query_one("#dataset-summary", Static)
        chart = self.query_one("#histogram", Chart)
        try:
            setup = self.app.settings.setup
            spec = dataset_from_arg(str(name), input_len=setup.get("input_len", 128),
                                    output_len=setup.get("output_len", 128),
                                    trace_speed=setup.get("trace_speed", 1.0))
            requests = load_requests(spec, 200 if spec.kind in SYNTHETIC else None, 0)
        except UserError as exc:
            summary.update(str(exc))
            return
        inputs = [r.input_tokens for r in requests]
        outputs = [r.output_tokens or 0 for r in requests]
        chart.histogram([("input", inputs), ("output", outputs)])
        summary.update(f"{name}: {len(requests)} requests · input mean {sum(inputs) / len(inputs):,.0f} "
                       f"(max {max(inputs):,}) · output mean {sum(outputs) / len(outputs):,.0f} (max {max(outputs):,})")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def on_input_submitted(self, event) -> None:
        self.action_start()

    def action_start(self) -> None:
        error = self.query_one("#setup-error", Static)
        settings = self.app.settings
        try:
            settings.setup = self.query_one(OptionForm).read()  # kept, good or bad, with the rest of the choice
            settings.plan = str(self.query_one("#plan", Select).value)
            request = settings.request()
        except (UserError, OptionError) as exc:
            error.update(f"[red]{exc}[/]")
            return
        error.update("[dim]checking the plan…[/]")
        self._build_and_start(request)

    @work(thread=True, exclusive=True, group="build")
    def _build_and_start(self, request) -> None:
        """The run service checks the plan (libraries, datasets, devices: what the app cannot import), then it
        starts; a plan it refuses is its one line under the form."""
        from tuibench.ui.run_service import ServiceGone

        try:
            plan = self.app.run_service.build(request)
        except (UserError, ServiceGone) as exc:
            self.app.call_from_thread(self.query_one("#setup-error", Static).update, f"[red]{exc}[/]")
            return
        self.app.call_from_thread(self._start, plan)

    def _start(self, plan) -> None:
        skipped = {f"{s.spec.library}: {s.skip}" for s in plan.steps if s.skip}
        said = [*plan.notes, *(["skipped " + "; ".join(sorted(skipped))] if skipped else [])]
        self.query_one("#setup-error", Static).update("[dim]" + "\n".join(said) + "[/]" if said else "")
        save_settings(self.app.settings)
        self.app.start_plan(plan)

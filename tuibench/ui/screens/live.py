"""Live: the plan's progress (step k of n, each finished library's numbers), the running step's progress,
throughput and latency charts overlaying the libraries on the same workload, device sparklines,
percentiles and the log, as the plan goes."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, ProgressBar, RichLog, Sparkline, Static

from tuibench.core import events as ev
from tuibench.core.catalogue import BY_KEY, CORE_LATENCIES, LATENCY_OF, LATENCY_UNIT, QUANTILE_DIGITS, REQUEST_RATE
from tuibench.core.plan import rate_label
from tuibench.core.reducer import PlanState, RunState, StepState
from tuibench.core.units import NA, fmt, fmt_si
from tuibench.report.gpus import gpu_rows
from tuibench.report.tables import describe_spec, status_markup, status_text
from tuibench.ui.screens.base import TuibenchScreen
from tuibench.ui.widgets.charts import Chart

SPARK_POINTS = 120  # the last 30 s at 4 Hz
OUTPUT_RATE = BY_KEY["output_throughput_tok_s"]  # the throughput chart's, the steps' and the progress line's
TTFT, TPOT = LATENCY_OF["ttft_ms"], LATENCY_OF["tpot_ms"]
# Once a served run has ended, the server's quantiles of these beside the client's (its histograms export them).
SERVER_LATENCIES = ("ttft_ms", "tpot_ms", "e2el_ms")
# What each telemetry source shows, in order of interest: (key, label, unit).
GPU_SPARKS = (("util_pct", "GPU util", "%"), ("mem_used_mib", "GPU mem", "MiB"), ("power_w", "power", "W"))
CPU_SPARKS = (("cpu_pct", "CPU", "%"), ("rss_mib", "RSS", "MiB"), ("mem_used_pct", "RAM", "%"))
# Serving against a server that exports Prometheus metrics: its queue and KV cache beside the device.
SERVER_SPARKS = (("waiting_requests", "waiting", ""), ("kv_cache_used_pct", "KV cache", "%"))


def count_text(n: int) -> str:
    """A count in at most 5 characters (the percentiles' n column): 14,948 ITL gaps as 14.9k, never cut to 149."""
    return f"{n:,}" if n < 10_000 else fmt_si(n)


def short_label(spec, with_dataset: bool) -> str:
    """A step in a narrow column: 'vllm serve @4', 'llamacpp short2long offline'."""
    what = spec.scenario
    if spec.scenario == "serving":
        what = f"serve {spec.dataset.kind} ×{spec.dataset.trace_speed:g}" if spec.dataset.kind == "trace" else \
            f"serve @{rate_label(spec.serving.request_rate)}"
    dataset = f" {spec.dataset.label}" if with_dataset and spec.scenario != "profile" else ""
    return f"{spec.library}{dataset} {what}"


def same_workload(plan: PlanState) -> list[StepState]:
    """The steps that ran (or run) the shown run's workload: the libraries its charts overlay."""
    shown = plan.run.spec
    if shown is None:
        return []
    key = (shown.model, shown.workload)
    return [s for s in plan.steps if s.run.requests_done and s.run.spec is not None
            and (s.run.spec.model, s.run.spec.workload) == key]


SHORT_ROWS = 32  # a terminal shorter than this gets the compact bottom panel


class Spark(Vertical):
    DEFAULT_CSS = "Spark { height: 2; width: 1fr; } Spark Sparkline { height: 1; } Spark Label { height: 1; }"

    def __init__(self, key: str, label: str, unit: str, classes: str = "device"):
        super().__init__(classes=classes)
        self.key, self.label, self.unit = key, label, unit

    def compose(self) -> ComposeResult:
        yield Label(f"{self.label}: {NA}")
        yield Sparkline([], summary_function=max)

    def show(self, values: list[float], latest: float | None) -> None:
        self.query_one(Label).update(f"{self.label}: {fmt(latest, 0, self.unit)}")
        self.query_one(Sparkline).data = values


class LiveScreen(TuibenchScreen):
    BINDINGS = [
        Binding("c", "cancel", "Cancel run"),
        Binding("l", "toggle_log", "Log/steps"),
        Binding("m", "app.switch_mode('modules')", "Modules"),
    ]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="live"):
            yield Static("", id="plan-title")
            yield Static("no run yet: press 1 for Setup, or start with `tuibench app --replay EVENTS.jsonl`",
                         id="run-title")
            yield Static("", id="warnings")
            with Horizontal(id="progress-row"):
                yield ProgressBar(id="progress", show_eta=False)
                yield Static("", id="rate")
            with Horizontal(id="charts"):
                # The time axis named in the title: a row of its own left the charts 2 rows of data at 80×24.
                yield Chart(f"{OUTPUT_RATE.label} against time (s)", id="throughput")
                yield Chart(f"latency {LATENCY_UNIT} against time (s)", id="latency")
            with Horizontal(id="sparks"):
                for key, label, unit in CPU_SPARKS:
                    yield Spark(key, label, unit)
                for key, label, unit in SERVER_SPARKS:
                    yield Spark(key, label, unit, classes="server")
            yield Static("", id="gpus")  # a row per GPU when the run samples several
            with Horizontal(id="bottom"):
                yield DataTable(id="percentiles", show_cursor=False, zebra_stripes=False)
                yield DataTable(id="steps", show_cursor=False, zebra_stripes=False)
                # A long line wraps at the log's own width, never cut (RichLog renders at 78 columns or more unless
                # told otherwise, and the log is half of an 80-column screen).
                yield RichLog(id="log", max_lines=500, wrap=True, markup=False, min_width=1)

    def on_mount(self) -> None:
        table = self.query_one("#percentiles", DataTable)
        table.add_columns(LATENCY_UNIT, "p50", "p90", "p99", "n")
        self.query_one("#steps", DataTable).add_columns("step", "status", OUTPUT_RATE.column)
        self.show_log = False  # with a plan of several steps the steps take the log's place; l swaps them
        self._logged = 0
        self._log_for: RunState | None = None  # the run whose log is shown
        self._ended_for = None
        self._marks: dict[str, object] = {}
        super().on_mount()

    def on_screen_resume(self) -> None:
        self._marks = {}  # everything again: the state may be another run's by now
        super().on_screen_resume()

    def on_resize(self) -> None:
        self.set_class(self.size.height < SHORT_ROWS, "-short")  # 80×24: the charts keep rows for their data

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "Cancel run" is offered while there is one to cancel, not on a finished or stored run.
        return self.app.running if action == "cancel" else True

    def action_cancel(self) -> None:
        if self.app.cancel_run():
            self.notify("cancelling: the run stops, what it measured is kept")
        else:
            self.notify("no run in progress")

    def action_toggle_log(self) -> None:
        self.show_log = not self.show_log
        self._marks = {}
        self.again()

    def redraw(self) -> None:
        # Each part redraws only when what it shows has moved: telemetry arrives at 4 Hz, requests far less often,
        # and the charts and the table are the dear part (a redraw of all at every sample cost ~15 % of a core).
        plan: PlanState = self.app.plan_state
        state: RunState = plan.run
        moved = self._moved(state)
        if "status" in moved:
            self.refresh_bindings()  # a run began or ended: the footer's "Cancel run" with it
        if "records" in moved or "status" in moved:
            self._plan(plan)
            self._title(state)
            self._warnings(state)
            self._progress(state)
            self._charts(plan, state)
            self._percentiles(state)
        if "telemetry" in moved:
            self._sparks(state)
        if "logs" in moved or "status" in moved:
            self._log(state)

    def _moved(self, state: RunState) -> set[str]:
        plan = self.app.plan_state
        marks = {"records": (id(state), state.requests_done), "telemetry": (id(state), state.telemetry_count),
                 "logs": (id(state), state.log_count),
                 "status": (id(state), state.status, state.phase, state.progress, id(plan), plan.status,
                            tuple((s.status, len(s.probes)) for s in plan.steps))}
        moved = {name for name, mark in marks.items() if self._marks.get(name) != mark}
        self._marks = marks
        return moved

    def _plan(self, plan: PlanState) -> None:
        """Step k of n and which library runs now; each step's outcome in the steps table."""
        several = len(plan.steps) > 1 or any(s.step.search for s in plan.steps)  # probes are listed as steps are
        self.query_one("#plan-title", Static).display = several
        self.query_one("#steps", DataTable).display = several and not self.show_log
        self.query_one("#log", RichLog).display = not several or self.show_log
        if not several:
            return
        runnable = [s for s in plan.steps if s.status != "skipped"]
        done = sum(s.status not in ("pending", "running") for s in runnable)
        now = plan.current.step.label if plan.current else plan.status
        self.query_one("#plan-title", Static).update(
            f"[b]plan {plan.plan_id}[/b] · {plan.plan.label if plan.plan else ''} · step "
            f"{min(done + 1, len(runnable))}/{len(runnable)} · {now}")
        table = self.query_one("#steps", DataTable)
        table.clear()
        datasets = len({s.step.spec.dataset.label for s in plan.steps if s.step.spec.scenario != "profile"}) > 1
        for step in plan.steps:
            if step.step.search is not None:  # a capacity step: a row, then one per probe with its verdict
                found = step.capacity.capacity_rps if step.capacity else None
                table.add_row(f"{short_label(step.step.spec, datasets).rsplit(' serve', 1)[0]} capacity",
                              status_text(step.status), f"{found:.3g} {REQUEST_RATE.unit}" if found else "")
                for probe in step.probes:
                    table.add_row(f"  @{probe.rate_rps:.3g} {REQUEST_RATE.unit}",
                                  "[green]met[/]" if probe.met else "[red]missed[/]",
                                  fmt(probe.measured_ms.get(step.step.search.objectives[0].label), 0, LATENCY_UNIT))
                continue
            run = step.run
            rate = run.metrics().output_throughput_tok_s if run.requests_done and step.status != "running" else None
            table.add_row(short_label(step.step.spec, datasets), status_text(step.status),
                          OUTPUT_RATE.cell(rate) if rate is not None else "")

    def _charts(self, plan: PlanState, state: RunState) -> None:
        """The shown run's throughput and latency, and those of the other libraries on the same workload."""
        others = [s for s in same_workload(plan) if s.run is not state]
        label = state.spec.library if state.spec else OUTPUT_RATE.column
        marks = self._steady_marks(state)
        self.query_one("#throughput", Chart).show(
            [(s.run.spec.library, *s.run.timeline.throughput()) for s in others] + [(label, *state.timeline.throughput())],
            marks=marks)
        if others:  # one library against another: TTFT says most about how each serves
            series = [(f"{s.run.spec.library} {TTFT.short}", *s.run.timeline.latency(TTFT.field)) for s in others]
            self.query_one("#latency", Chart).show(
                series + [(f"{label} {TTFT.short}", *state.timeline.latency(TTFT.field))], scatter=True, marks=marks)
        else:
            self.query_one("#latency", Chart).show(
                [(latency.short, *state.timeline.latency(latency.field)) for latency in (TTFT, TPOT)], scatter=True,
                marks=marks)

    @staticmethod
    def _steady_marks(state: RunState) -> list[float]:
        """Where the run's steady window begins and, once it has ended, where it ends (its drain starts after), in
        the charts' seconds since the first request. None until 50 requests are in."""
        steady = state.metrics().steady if state.requests_done else None
        if steady is None:
            return []
        origin = state.timeline.origin_s
        return [steady.start_s - origin] + ([steady.end_s - origin] if state.ended else [])

    def _title(self, state: RunState) -> None:
        title = self.query_one("#run-title", Static)
        spec = state.spec
        current = self.app.plan_state.current
        if spec is None and current is not None:  # its child not started yet (a server starting): the step's own
            spec = current.step.spec
        if spec is None:
            title.update("no run yet: r on Setup starts one, Enter on a run in History shows it")
            return
        run = f"run {state.run_id} · " if state.run_id else ""
        phase = f" · {state.phase}" if state.phase and not state.ended else ""
        title.update(f"{run}{status_markup(state.status)}{phase} · {describe_spec(spec)}")

    def _warnings(self, state: RunState) -> None:
        """Why the numbers may not be the library's alone (core/validity.py): one line each, hidden when none."""
        found = state.warnings() if state.spec is not None else []
        widget = self.query_one("#warnings", Static)
        widget.display = bool(found)
        widget.update("\n".join(f"⚠ {w.message}" for w in found))

    def _progress(self, state: RunState) -> None:
        bar = self.query_one("#progress", ProgressBar)
        if state.spec is not None and state.spec.scenario == "profile":
            done, total = (state.progress.done, state.progress.total) if state.progress else (0, len(state.spec.profile.lengths))
        else:
            done, total = state.requests_done, state.num_requests or None
        bar.update(total=total, progress=done)
        rate = state.live_output_tok_s()
        elapsed = f"{state.last_t_s:,.0f} s" if state.last_t_s else ""
        self.query_one("#rate", Static).update(f"{done}/{total or '?'}  {OUTPUT_RATE.text(rate)}  {elapsed}")

    def _sparks(self, state: RunState) -> None:
        by_source: dict[str, list[ev.TelemetrySample]] = {}
        for sample in list(state.recent_telemetry)[-SPARK_POINTS * 4:]:
            by_source.setdefault(sample.source, []).append(sample)
        gpu = next((s for s in by_source if s.startswith("gpu")), None)
        wanted = [(gpu, spec) for spec in GPU_SPARKS] if gpu else [("cpu", spec) for spec in CPU_SPARKS]
        for widget, (source, (key, label, unit)) in zip(self.query(".device"), wanted, strict=False):
            if (widget.key, widget.label) != (key, label):
                widget.key, widget.label, widget.unit = key, label, unit
            self._spark(widget, by_source.get(source, []))
        for widget in self.query(".server"):
            widget.display = "server" in by_source
            if widget.display:
                self._spark(widget, by_source["server"])
        rows = gpu_rows(list(state.recent_telemetry)[-SPARK_POINTS * (len(by_source) + 1):])
        gpus = self.query_one("#gpus", Static)
        gpus.display = bool(rows)
        gpus.update("\n".join(rows))
        # A row per GPU says all the sparklines would say of the first one: they give the screen back (80x24).
        for widget in self.query(".device"):
            widget.display = not rows
        self.query_one("#sparks").display = any(widget.display for widget in self.query(Spark))

    @staticmethod
    def _spark(widget: Spark, samples: list[ev.TelemetrySample]) -> None:
        present = [v for s in samples[-SPARK_POINTS:] if (v := s.values.get(widget.key)) is not None]
        widget.show(present, present[-1] if present else None)

    def _percentiles(self, state: RunState) -> None:
        table = self.query_one("#percentiles", DataTable)
        table.clear()
        metrics = state.metrics() if state.requests_done else None
        for latency in CORE_LATENCIES:
            stat = getattr(metrics, latency.field) if metrics else None
            table.add_row(latency.short, *(fmt(getattr(stat, q), QUANTILE_DIGITS) if stat else NA
                                           for q in ("p50", "p90", "p99")),
                          count_text(stat.n) if stat else "0")
        steady = metrics.steady if metrics else None
        if steady is not None:  # between the charts' grey lines: the run without its warm-up and drain
            for latency in (TTFT, TPOT):
                stat = getattr(steady, latency.field)
                if stat is not None:
                    table.add_row(f"{latency.short} steady", *(fmt(getattr(stat, q), QUANTILE_DIGITS)
                                                               for q in ("p50", "p90", "p99")), count_text(stat.n))
        server = metrics.server if metrics else None
        if server is not None and server.requests:  # once the run has ended: the server's view of the same requests
            for field in SERVER_LATENCIES:  # its fields are named as the catalogue's keys: "ttft_p50_ms"
                stem = field.removesuffix("_ms")
                p50, p99 = getattr(server, f"{stem}_p50_ms"), getattr(server, f"{stem}_p99_ms")
                if p50 is not None:
                    table.add_row(f"{LATENCY_OF[field].short} srv", fmt(p50, QUANTILE_DIGITS), NA,
                                  fmt(p99, QUANTILE_DIGITS), str(server.requests))

    def _log(self, state: RunState) -> None:
        log = self.query_one("#log", RichLog)
        if state is not self._log_for:  # another run (a new one, or a stored one opened): its own lines only
            log.clear()
            self._logged, self._log_for = 0, state
        fresh = min(state.log_count - self._logged, len(state.logs))
        for entry in list(state.logs)[len(state.logs) - fresh:]:
            first_line = entry.message.splitlines()[0] if entry.message else ""
            log.write(f"{entry.t_s:7.1f}s {first_line}")
        self._logged = state.log_count
        if state.ended and self._ended_for is not state:
            self._ended_for = state  # once per run: what it came to, in one line
            if state.error:
                log.write(f"{state.status}: {state.error}")
            if state.requests_done:
                m = state.metrics()
                rates = " · ".join(BY_KEY[key].named(BY_KEY[key].read(m)) for key in
                                   ("output_throughput_tok_s", "total_throughput_tok_s", "request_throughput_rps"))
                duration = BY_KEY["duration_s"]
                log.write(f"{state.status}: {m.completed} ok, {m.failed} failed · {rates} in "
                          f"{duration.text(duration.read(m))}")

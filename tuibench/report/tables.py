"""The metrics table of a run, and the list of stored runs."""

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from tuibench.core.aggregate import EXACT_VALUES
from tuibench.core.catalogue import BY_KEY, LATENCIES, LATENCY_DIGITS, LATENCY_OF, LATENCY_UNIT, STATUS_STYLE
from tuibench.core.metrics import RunMetrics, Stat, TokenDrift
from tuibench.core.plan import load_label
from tuibench.core.spec import RunSpec
from tuibench.core.store import PlanRow, RunRow
from tuibench.core.units import NA, fmt, fmt_share
from tuibench.core.validity import RunWarning

# The rows of a run's own table, in order; a row whose value is None is left out where the run may lack it.
RUN_ROWS = ("completed", "failed", "duration_s", "input_tokens", "output_tokens", "output_throughput_tok_s",
            "output_throughput_per_gpu_tok_s", "total_throughput_tok_s", "request_throughput_rps",
            "energy_per_output_token_j", "goodput_rps")
OPTIONAL_ROWS = {"output_throughput_per_gpu_tok_s", "energy_per_output_token_j", "goodput_rps"}
# The client's latency quantiles set beside the server's (its histograms export p50 and p99 of these three).
SERVER_ROWS = ("ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms", "e2el_p50_ms", "e2el_p99_ms")


def status_text(status: str, suffix: str = "") -> Text:
    """A status in its colour as a Text, for a table cell: its width is the status's, not its markup's."""
    return Text.assemble((status, STATUS_STYLE.get(status, "")), suffix)


def status_markup(status: str) -> str:
    """A status in its colour (Rich markup); an unknown one plain, never as an empty tag."""
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def describe_spec(spec: RunSpec) -> str:
    engine = f"{spec.library} · {spec.model_label}" + (f" · {spec.parallel.label}" if spec.parallel.label else "")
    engine += "".join(f" · {setting}" for setting in spec.engine_settings)
    if spec.scenario == "profile":
        params = spec.profile
        lengths = ",".join(map(str, params.lengths))
        return (f"{engine} · profile: batch {params.batch_size}, lengths {lengths}, "
                f"{params.decode_steps} decode steps, ×{params.repeats} · seed {spec.seed}")
    count = f"{spec.num_requests} requests" if spec.num_requests else "all requests"
    if spec.scenario == "serving":
        serving = spec.serving
        setting = load_label(spec) + (f", ≤{serving.max_concurrency} concurrent" if serving.max_concurrency else "")
    else:
        setting = f"batch {spec.offline.batch_size}" + (", honor EOS" if spec.offline.honor_eos else "")
    return f"{engine} · {spec.dataset.label} ({count}) · {spec.scenario}, {setting} · seed {spec.seed}"


def metrics_table(metrics: RunMetrics, title: str = "") -> Table:
    table = Table(title=title or None, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key in RUN_ROWS:
        metric = BY_KEY[key]
        value = metric.read(metrics)
        if value is not None or key not in OPTIONAL_ROWS:
            table.add_row(metric.label, metric.cell(value))
    if metrics.input_drift is not None:
        table.add_row("prompt tokens counted", drift_text(metrics.input_drift))
    if metrics.output_drift is not None and metrics.output_drift.off:
        table.add_row("output tokens generated", drift_text(metrics.output_drift))
    if metrics.trimmed:
        table.add_row("trimmed", f"first and last {metrics.trimmed} requests")
    if (cold := metrics.cold_start) is not None:
        metric = BY_KEY["cold_start_s"]
        table.add_row(metric.label, f"{metric.cell(cold.total_s)}: process {fmt(cold.process_start_s, 1)} + load "
                                    f"{fmt(cold.load_s, 1)} + first request {fmt(cold.first_request_s, 2)}")
    if metrics.prefill_s is not None:  # offline static batches: each phase, and its share of the two
        whole = (metrics.prefill_s or 0.0) + (metrics.decode_s or 0.0)
        for metric in (BY_KEY["prefill_s"], BY_KEY["decode_s"]):
            value = metric.read(metrics)
            table.add_row(metric.label, f"{metric.text(value)} ({fmt_share(value, whole)})")
    return table


def drift_text(drift: TokenDrift) -> str:
    """"128.0 / request as planned" or "134.0 / request, planned 128.0 (+4.7 %) on 24 of 24"."""
    if not drift.off:
        return f"{drift.counted_mean:,.1f} / request, as planned"
    return (f"[yellow]{drift.counted_mean:,.1f} / request, planned {drift.planned_mean:,.1f} ({drift.pct:+.1f} %) "
            f"on {drift.off} of {drift.requests}[/]")


def workers_table(metrics: RunMetrics) -> Table | None:
    """Serving with --client-workers: each client process's requests and schedule lag; None for one client."""
    if not metrics.workers:
        return None
    table = Table(title="client workers", box=None, pad_edge=False)
    # Ray actors read their own node's clock: how far it is from the run's is part of what their times stand on.
    offsets = any(w.clock_offset_ms is not None for w in metrics.workers)
    lag = (BY_KEY["schedule_lag_p50_ms"], BY_KEY["schedule_lag_p99_ms"])
    for name in ("worker", "requests", BY_KEY["failed"].column, *(m.heading for m in lag),
                 *([f"clock offset {LATENCY_UNIT}"] if offsets else [])):
        table.add_column(name, justify="right")
    for w in metrics.workers:
        table.add_row(str(w.worker), str(w.requests), str(w.failed), fmt(w.lag_ms.p50, lag[0].digits),
                      fmt(w.lag_ms.p99, lag[1].digits), *([fmt(w.clock_offset_ms, 3)] if offsets else []))
    return table


def print_warnings(console, warnings: Sequence[RunWarning]) -> None:
    """A run's validity warnings, one line each, under its numbers."""
    for warning in warnings:
        console.print(f"[yellow]⚠ {warning.message}[/]", highlight=False)


def server_table(metrics: RunMetrics) -> Table | None:
    """Serving against a server with Prometheus metrics: its latency quantiles beside the client's (the difference
    is the client's and the network's share), then what it held: None when it exports none."""
    view = metrics.server
    if view is None:
        return None
    table = Table(title="the server's view (its histograms, interpolated within their buckets)", box=None,
                  pad_edge=False, header_style="bold")
    for column in (f"latency ({LATENCY_UNIT})", "client", "server", "its bucket", "client + network"):
        table.add_column(column, justify="left" if column.startswith("latency") else "right")
    for key in SERVER_ROWS:  # the server's view names its fields as the catalogue's keys: "ttft_p50_ms"
        metric = BY_KEY[key]
        client, server = metric.read(metrics), getattr(view, key)
        bucket = view.buckets_ms.get(key.removesuffix("_ms"))
        table.add_row(metric.label, fmt(client, LATENCY_DIGITS), fmt(server, LATENCY_DIGITS),
                      f"{bucket[0]:,.0f}–{bucket[1]:,.0f}" if bucket else NA, _overhead(client, bucket))
    table.caption = (f"running ≤ {fmt(view.max_running_requests, 0)} · waiting ≤ {fmt(view.max_waiting_requests, 0)}"
                     f" · KV cache ≤ {fmt(view.max_kv_cache_used_pct, 1, '%')} · prefix-cache hits "
                     f"{fmt(view.prefix_cache_hit_pct, 1, '%')} · preemptions {fmt(view.preemptions, 0)}"
                     + (f" · speculative tokens accepted {fmt(view.spec_acceptance_pct, 1, '%')}"
                        if view.spec_acceptance_pct is not None else ""))
    return table


def _overhead(client: float | None, bucket: tuple[float, float] | None) -> str:
    """What the client saw beyond the server, as far as the server's bucket resolves it: at least the distance
    above the bucket; inside it, nothing can be said."""
    if client is None or bucket is None:
        return NA
    low, high = bucket
    if client > high:
        return f"≥ {client - high:,.2f}"
    if client < low:
        return f"≤ {client - low:,.2f}"
    return "within the bucket"


def run_tables(metrics: RunMetrics, title: str | None = None) -> list[Table]:
    """A run's result: its figures, its latencies, the server's view, the client workers and the conversations'
    turns, where they apply."""
    tables = [metrics_table(metrics, title=title or ""), latency_table(metrics)]
    return tables + [t for t in (steady_table(metrics), server_table(metrics), workers_table(metrics),
                                 turns_table(metrics)) if t is not None]


TTFT_OF_STEADY = LATENCY_OF["ttft_ms"].short  # the series the window is found in (core/steady.py)
STEADY_KEYS = ("output_throughput_tok_s", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms", "e2el_p50_ms",
               "e2el_p99_ms")


def steady_table(metrics: RunMetrics) -> Table | None:
    """A serving run's figures between its warm-up and its drain, beside the whole run's; None where no window was
    found (core/steady.py)."""
    steady = metrics.steady
    if steady is None:
        return None
    total = steady.warmup + steady.requests + steady.drain
    table = Table(title=f"steady state (MSER-5 on {TTFT_OF_STEADY})", box=None, pad_edge=False, header_style="bold")
    for column in ("", "whole run", "steady"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("requests, by send", f"1–{total}", f"{steady.warmup + 1}–{steady.warmup + steady.requests}")
    table.add_row("warm-up, drain", "", f"{steady.warmup}, {steady.drain}")
    for key in STEADY_KEYS:  # SteadyState names its figures as RunMetrics does: the catalogue reads either
        metric = BY_KEY[key]
        table.add_row(metric.heading, fmt(metric.read(metrics), metric.digits), fmt(metric.read(steady), metric.digits))
    return table


def turns_table(metrics: RunMetrics) -> Table | None:
    """The conversations dataset: TTFT per turn against the prompt it carried (the conversation so far)."""
    if not metrics.turns:
        return None
    table = Table(title="conversations, by turn", box=None, pad_edge=False, header_style="bold")
    quantiles = (BY_KEY["ttft_p50_ms"], BY_KEY["ttft_p99_ms"])
    for column in ("turn", "requests", "prompt tokens", *(m.heading for m in quantiles)):
        table.add_column(column, justify="right")
    for turn in metrics.turns:
        table.add_row(str(turn.turn + 1), str(turn.completed), fmt(turn.prompt_tokens, 0),
                      fmt(turn.ttft_ms.p50, quantiles[0].digits), fmt(turn.ttft_ms.p99, quantiles[1].digits))
    return table


def latency_table(metrics: RunMetrics) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in (f"latency ({LATENCY_UNIT})", "mean", "std", "p50", "p90", "p99", "n"):
        table.add_column(column, justify="left" if column.startswith("latency") else "right")
    sketched = 0.0
    for latency in LATENCIES:
        stat: Stat | None = getattr(metrics, latency.field)
        if latency.serving_only and stat is None:
            continue  # shown only where the run has it
        if stat is None:
            table.add_row(latency.label, *([NA] * 5), "0")
            continue
        sketched = max(sketched, stat.relative_error)
        table.add_row(latency.label + (" ≈" if stat.relative_error else ""),
                      *(fmt(v, LATENCY_DIGITS) for v in (stat.mean, stat.std, stat.p50, stat.p90, stat.p99)),
                      str(stat.n))
    if sketched:  # a long run: its percentiles are a sketch's, not a sort's
        table.caption = f"≈ percentiles within ±{100 * sketched:g} % (a sketch, past {EXACT_VALUES:,} values)"
    return table


def runs_table(runs: Sequence[RunRow], width: int = 200) -> Table:
    """On a narrow console only the names (library, model, dataset) are cut, with an ellipsis; nothing wraps."""
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0), expand=width < 120)
    throughput = BY_KEY["output_throughput_tok_s"]
    for column, min_width in (("id", 3), ("plan", 4), ("when (UTC)", 11), ("status", 11), ("library", None),
                              ("model", None), ("dataset", None), ("scenario", 8), ("reqs", 4),
                              (throughput.column, 6)):
        table.add_column(column, justify="right" if column in ("id", "plan", "reqs", throughput.column) else "left",
                         no_wrap=True, min_width=min_width, ratio=None if min_width else 1, overflow="ellipsis")
    for run in runs:
        metrics = run.metrics
        table.add_row(
            str(run.id), str(run.plan_id or ""), run.created_at[5:16].replace("T", " "),
            status_markup(run.status),
            run.library, run.model, run.dataset, run.scenario,
            str(metrics.completed) if metrics else NA,
            throughput.cell(throughput.read(metrics) if metrics else None),
        )
    return table


def plans_table(plans: Sequence[PlanRow]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0))
    for column in ("plan", "when (UTC)", "status", "steps", "runs", "label"):
        table.add_column(column, justify="right" if column in ("plan", "steps", "runs") else "left", no_wrap=True)
    for plan in plans:
        table.add_row(str(plan.id), plan.created_at[5:16].replace("T", " "),
                      status_markup(plan.status), str(plan.steps), str(plan.runs), plan.label)
    return table


def check_table(results, pairs, tokens: int, flagged: Sequence[str]) -> Table:
    """`tuibench check`: per pair of libraries, how many leading greedy tokens agree, per prompt and in all."""
    table = Table(title=f"greedy agreement: leading tokens equal, of {tokens} per prompt", box=None, pad_edge=False,
                  header_style="bold", padding=(0, 1, 0, 0), title_justify="left")
    table.add_column("libraries", no_wrap=True)
    count = max((len(p.per_prompt) for p in pairs), default=0)
    for i in range(count):
        table.add_column(f"p{i + 1}", justify="right")
    table.add_column("all", justify="right")
    for pair in pairs:
        full = sum(n == tokens for n in pair.per_prompt)
        style = "green" if full == len(pair.per_prompt) else "yellow"
        table.add_row(f"{pair.first} · {pair.second}", *(str(n) for n in pair.per_prompt),
                      f"[{style}]{full}/{len(pair.per_prompt)} identical[/]")
    for result in results:
        if result.error:
            table.add_row(f"[red]{result.library}[/]", *([""] * count), f"[red]failed: {result.error}[/]")
    for library in flagged:
        table.add_row(f"[red]{library}[/]", *([""] * count), "[red]disagrees with all the others[/]")
    return table

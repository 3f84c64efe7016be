"""The metrics table of a run, and the list of stored runs."""

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from tuibench.core.aggregate import EXACT_VALUES
from tuibench.core.catalogue import LATENCIES, STATUS_STYLE
from tuibench.core.metrics import RunMetrics, Stat, TokenDrift
from tuibench.core.spec import RunSpec
from tuibench.core.store import PlanRow, RunRow
from tuibench.core.units import NA, fmt, fmt_share
from tuibench.core.validity import RunWarning



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
        rate = f"{serving.request_rate:g} req/s" if serving.request_rate else "all at once"
        setting = f"{rate}" + (f", ≤{serving.max_concurrency} concurrent" if serving.max_concurrency else "")
    else:
        setting = f"batch {spec.offline.batch_size}" + (", honor EOS" if spec.offline.honor_eos else "")
    return f"{engine} · {spec.dataset.label} ({count}) · {spec.scenario}, {setting} · seed {spec.seed}"


def metrics_table(metrics: RunMetrics, title: str = "") -> Table:
    table = Table(title=title or None, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("requests done / failed", f"{metrics.completed} / {metrics.failed}")
    table.add_row("measured time", fmt(metrics.duration_s, 2, "s"))
    table.add_row("input / output tokens", f"{metrics.input_tokens:,} / {metrics.output_tokens:,}")
    table.add_row("output throughput", fmt(metrics.output_throughput_tok_s, 1, "tok/s"))
    if metrics.output_throughput_per_gpu_tok_s is not None:
        table.add_row("  per GPU", fmt(metrics.output_throughput_per_gpu_tok_s, 1, "tok/s"))
    table.add_row("total throughput", fmt(metrics.total_throughput_tok_s, 1, "tok/s"))
    table.add_row("request throughput", fmt(metrics.request_throughput_rps, 2, "req/s"))
    if metrics.energy_per_output_token_j is not None:
        table.add_row("energy / output token", fmt(metrics.energy_per_output_token_j, 3, "J/tok"))
    if metrics.goodput_rps is not None:
        table.add_row("goodput (SLOs met)", fmt(metrics.goodput_rps, 2, "req/s"))
    if metrics.input_drift is not None:
        table.add_row("prompt tokens counted", drift_text(metrics.input_drift))
    if metrics.output_drift is not None and metrics.output_drift.off:
        table.add_row("output tokens generated", drift_text(metrics.output_drift))
    if metrics.trimmed:
        table.add_row("trimmed", f"first and last {metrics.trimmed} requests")
    if (cold := metrics.cold_start) is not None:
        table.add_row("cold start", f"{cold.total_s:.1f} s: process {cold.process_start_s:.1f} + load "
                                    f"{cold.load_s:.1f} + first request {fmt(cold.first_request_s, 2, 's')}")
    if metrics.prefill_s is not None:
        whole = (metrics.prefill_s or 0.0) + (metrics.decode_s or 0.0)
        table.add_row(
            "prefill / decode",
            f"{fmt(metrics.prefill_s, 2, 's')} ({fmt_share(metrics.prefill_s, whole)}) / "
            f"{fmt(metrics.decode_s, 2, 's')} ({fmt_share(metrics.decode_s, whole)})",
        )
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
    for name in ("worker", "requests", "failed", "lag p50 ms", "lag p99 ms", *(["clock offset ms"] if offsets else [])):
        table.add_column(name, justify="right")
    for w in metrics.workers:
        table.add_row(str(w.worker), str(w.requests), str(w.failed), fmt(w.lag_ms.p50, 2), fmt(w.lag_ms.p99, 2),
                      *([fmt(w.clock_offset_ms, 3)] if offsets else []))
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
    for column in ("latency (ms)", "client", "server", "its bucket", "client + network"):
        table.add_column(column, justify="left" if column.startswith("latency") else "right")
    for key, label, stat in (("ttft_p50", "TTFT p50", metrics.ttft_ms), ("ttft_p99", "TTFT p99", metrics.ttft_ms),
                             ("tpot_p50", "TPOT p50", metrics.tpot_ms), ("tpot_p99", "TPOT p99", metrics.tpot_ms),
                             ("e2el_p50", "E2E p50", metrics.e2el_ms), ("e2el_p99", "E2E p99", metrics.e2el_ms)):
        client = None if stat is None else (stat.p50 if key.endswith("50") else stat.p99)
        server, bucket = getattr(view, f"{key}_ms"), view.buckets_ms.get(key)
        table.add_row(label, fmt(client, 2), fmt(server, 2),
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
    return tables + [t for t in (server_table(metrics), workers_table(metrics), turns_table(metrics)) if t is not None]


def turns_table(metrics: RunMetrics) -> Table | None:
    """The conversations dataset: TTFT per turn against the prompt it carried (the conversation so far)."""
    if not metrics.turns:
        return None
    table = Table(title="conversations, by turn", box=None, pad_edge=False, header_style="bold")
    for column in ("turn", "requests", "prompt tokens", "TTFT p50 ms", "TTFT p99 ms"):
        table.add_column(column, justify="right")
    for turn in metrics.turns:
        table.add_row(str(turn.turn + 1), str(turn.completed), fmt(turn.prompt_tokens, 0), fmt(turn.ttft_ms.p50, 1),
                      fmt(turn.ttft_ms.p99, 1))
    return table


def latency_table(metrics: RunMetrics) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("latency (ms)", "mean", "std", "p50", "p90", "p99", "n"):
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
                      *(fmt(v, 2) for v in (stat.mean, stat.std, stat.p50, stat.p90, stat.p99)), str(stat.n))
    if sketched:  # a long run: its percentiles are a sketch's, not a sort's
        table.caption = f"≈ percentiles within ±{100 * sketched:g} % (a sketch, past {EXACT_VALUES:,} values)"
    return table


def runs_table(runs: Sequence[RunRow], width: int = 200) -> Table:
    """On a narrow console only the names (library, model, dataset) are cut, with an ellipsis; nothing wraps."""
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0), expand=width < 120)
    for column, min_width in (("id", 3), ("plan", 4), ("when (UTC)", 11), ("status", 11), ("library", None),
                              ("model", None), ("dataset", None), ("scenario", 8), ("reqs", 4), ("tok/s", 6)):
        table.add_column(column, justify="right" if column in ("id", "plan", "reqs", "tok/s") else "left", no_wrap=True,
                         min_width=min_width, ratio=None if min_width else 1, overflow="ellipsis")
    for run in runs:
        metrics = run.metrics
        table.add_row(
            str(run.id), str(run.plan_id or ""), run.created_at[5:16].replace("T", " "),
            status_markup(run.status),
            run.library, run.model, run.dataset, run.scenario,
            str(metrics.completed) if metrics else NA,
            fmt(metrics.output_throughput_tok_s if metrics else None, 1),
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

"""A comparison as the CLI prints it and as files: the plan's steps, the libraries side by side per workload,
the serving sweeps with their knees, and module shares; exported as JSON, CSV and Markdown."""

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import msgspec
from rich.table import Table

from tuibench.analysis.attribution import Explanation, explain
from tuibench.core.capacity import Capacity
from tuibench.core.catalogue import BY_KEY, QUANTILE_DIGITS, REQUEST_RATE, SWEEP_KEYS
from tuibench.core.document import ComparisonDocument, ProfileShares, assemble
from tuibench.core.errors import UserError
from tuibench.core.module_profile import ModuleProfile
from tuibench.core.plan import rate_label
from tuibench.core.side_by_side import Comparison, Group, Sweep, compare
from tuibench.core.stats import ASSUMED_NOISE_PCT, estimate
from tuibench.core.store import PlanRow, ResultsStore, RunRow, StepRow
from tuibench.core.units import fmt
from tuibench.report.explain import explanation_tables
from tuibench.report.figures import write_figures
from tuibench.report.module_tables import leaf_shares, shares_table
from tuibench.report.tables import status_markup


def load_document(store: ResultsStore, plan_id: int, baseline: str | None = None,
                  explain: tuple[str, str] | None = None) -> tuple[ComparisonDocument, list[ModuleProfile]]:
    """A stored plan side by side, and the module profiles of its profile runs (read once: the document keeps
    their shares, a terminal shows their table)."""
    stored = store.get_plan(plan_id)
    request = stored.plan.request
    profiles = {r.id: store.module_profiles(r.id) for r in stored.runs if r.scenario == "profile"}
    document = document_of(stored.runs, profiles, plan=stored.plan, steps=stored.steps,
                           baseline=baseline or (request.baseline or request.libraries[0] if request else None),
                           explain=explain)
    return document, [p for found in profiles.values() for p in found]


def explanation_of(runs: Sequence[RunRow], profiles: dict[int, list[ModuleProfile]], baseline: str | None,
                   pair: tuple[str, str] | None = None) -> Explanation | None:
    """The pair asked for (UserError naming a library the plan did not run), else the baseline against the first
    other library the plan ran (a plan of one library: its coarse runs against its profile); None where that
    explains nothing."""
    libraries = list(dict.fromkeys(r.library for r in runs))
    if pair is not None:
        missing = [name for name in pair if name not in libraries]
        if missing:
            raise UserError(f"--explain {','.join(pair)}: this plan ran no {' or '.join(missing)} "
                            f"(it ran {', '.join(libraries) or 'nothing'})")
        a, b = pair
    else:
        a = baseline if baseline in libraries else (libraries[0] if libraries else None)
        if a is None:
            return None
        b = next((name for name in libraries if name != a), "")
    explanation = explain(*([r for r in runs if r.library == name] for name in (a, b)), profiles, a, b)
    if pair is None and not (explanation.attributions or explanation.coarse_fine):
        return None
    return explanation


def document_of(runs: Sequence[RunRow], profiles: dict[int, list[ModuleProfile]], plan: PlanRow | None = None,
                steps: Sequence[StepRow] = (), baseline: str | None = None,
                explain: tuple[str, str] | None = None) -> ComparisonDocument[Explanation]:
    """The document of these runs: their comparison, each profile's shares by module category and coarse to fine,
    worked out here where analysis/ is in reach, assembled by core/document.py."""
    comparison = compare(runs, baseline)
    shares = [ProfileShares(run_id=run_id, library=p.library, phase=p.phase, input_len=p.input_len, batch=p.batch,
                            step_ms=p.step_ms, shares_pct=leaf_shares(p))
              for run_id, found in profiles.items() for p in found]
    return assemble(runs, comparison, shares, plan=plan, steps=steps,
                    explanation=explanation_of(runs, profiles, comparison.baseline, explain))


# -- terminal tables ---------------------------------------------------------------------------------------


def _table(title: str) -> Table:
    return Table(title=title, box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0), title_justify="left")


def steps_table(document: ComparisonDocument) -> Table:
    """The plan's table: every step, what became of it, and why a step did not run."""
    plan = document.plan
    title = f"plan {plan.id}: {plan.label} · {plan.status}" if plan else "steps"
    table = _table(title)
    throughput = BY_KEY["output_throughput_tok_s"]
    for column in ("#", "library", "dataset", "scenario", "rate", "status", "run", throughput.column, "note"):
        table.add_column(column, justify="right" if column in ("#", "run", throughput.column, "rate") else "left",
                         no_wrap=column != "note", overflow="fold")
    by_run = {r.run_id: r for r in document.results}
    for step in document.steps:
        result = by_run.get(step.run_id)
        value = result.metrics.get(throughput.key) if result else None
        runs, note = str(step.run_id or ""), step.reason or ""
        if step.capacity and step.capacity.probes:  # its runs are its probes'; its outcome, the capacity found
            ids = [p.run_id for p in step.capacity.probes if p.run_id is not None]
            runs = f"{min(ids)}–{max(ids)}" if len(ids) > 1 else runs if not ids else str(ids[0])
            found = step.capacity.capacity_rps
            note = note or (f"{len(step.capacity.probes)} probes: "
                            + (f"{found:.3g} {REQUEST_RATE.unit}" if found else "no rate held"))
        table.add_row(str(step.step), step.library, step.dataset or "–", step.scenario,
                      rate_label(step.rate) if step.scenario == "serving" else "", status_markup(step.status),
                      runs, throughput.cell(value) if result else "", note)
    return table


def probes_table(capacity: Capacity) -> Table:
    """A capacity step's probes by rate: what each measured against the objectives."""
    table = _table(f"{capacity.library} · {capacity.dataset}: capacity probes")
    came_back = BY_KEY["completion_rps"]
    for column in (REQUEST_RATE.heading, "run", "status", *(o.label for o in capacity.objectives), came_back.label,
                   "SLO"):
        table.add_column(column, justify="left" if column == "SLO" else "right")
    for p in sorted(capacity.probes, key=lambda p: p.rate_rps):
        table.add_row(f"{p.rate_rps:.3g}", str(p.run_id or ""), status_markup(p.status),
                      *(fmt(p.measured_ms.get(o.label), QUANTILE_DIGITS) for o in capacity.objectives),
                      came_back.cell(p.completed_rps),
                      "met" if p.met else "missed: " + "; ".join(p.missed))
    return table


def cell_text(group: Group, row_index: int, column: int, markup: bool = True) -> str:
    """A value (± the half width of its 95 % interval, over repeats), its ratio to the baseline (≈ when the
    difference is within the noise), and ★ on the best of its row."""
    row = group.rows[row_index]
    cell = row.cells[column]
    digits = BY_KEY[row.key].digits
    text = fmt(int(cell.value) if row.key == "failed" and cell.value is not None else cell.value, digits)
    if cell.low is not None and cell.high is not None and row.key != "failed":
        text += f" ±{fmt((cell.high - cell.low) / 2, digits)}"
    if cell.ratio is not None and column != group.baseline:
        text += f" ({'≈' if cell.verdict == 'within noise' else ''}{cell.ratio:.2f}×)"
    if row.best == column:
        text = f"[bold green]{text} ★[/]" if markup else f"{text} ★"
    return text


def column_header(group: Group, column: int) -> str:
    col = group.columns[column]
    header = col.label + (" (base)" if column == group.baseline else "") + (" ⚠" if col.warnings else "")
    return header if col.status == "finished" else f"{header}\n{col.status}"


def group_table(group: Group) -> Table:
    table = _table(group.title)
    table.add_column("metric", no_wrap=True)
    for index in range(len(group.columns)):
        table.add_column(column_header(group, index), justify="right", no_wrap=True)
    for row_index, row in enumerate(group.rows):
        table.add_row(row.label, *(cell_text(group, row_index, c) for c in range(len(group.columns))))
    return table


def sweep_table(sweeps: Sequence[Sweep]) -> Table:
    """The paper's throughput–latency figures as a table: per library, one row per offered rate."""
    table = _table(f"serving: each library's figures against the {REQUEST_RATE.label}")
    figures = [BY_KEY[key] for key in SWEEP_KEYS]
    for column in ("dataset", "library", REQUEST_RATE.heading, "run", *(m.label for m in figures),
                   BY_KEY["failed"].column):
        table.add_column(column, justify="left" if column in ("dataset", "library") else "right", no_wrap=True)
    for sweep in sweeps:
        for index, p in enumerate(sweep.points):
            table.add_row(sweep.dataset if index == 0 else "", sweep.label if index == 0 else "", rate_label(p.rate),
                          str(p.run_id), *(fmt(getattr(p, m.key), m.digits) for m in figures), str(p.failed))
    return table


REPEATED = ("output_throughput_tok_s", "ttft_p50_ms", "tpot_p50_ms")  # each repeat's value shown, by these


def first_repeat_note(values: Sequence[float]) -> str | None:
    """Repeat 1 set against the others when it stands out (a cold cache, a CPU still clocking up): it is in the
    mean, and the user should know."""
    if len(values) < 3:
        return None
    rest = values[1:]
    mean_rest = sum(rest) / len(rest)
    spread_pct = 100.0 * (max(rest) - min(rest)) / abs(mean_rest) if mean_rest else 0.0
    off_pct = 100.0 * (values[0] - mean_rest) / abs(mean_rest) if mean_rest else 0.0
    if abs(off_pct) <= max(2.0, spread_pct):
        return None
    return f"repeat 1 is {off_pct:+.1f} % off the others (spread {spread_pct:.1f} %): a cold start? It is in the mean"


def repeats_table(document: ComparisonDocument) -> Table | None:
    """Each repeated column: every repeat's value, then the mean and its 95 % interval, so that nothing is pooled
    unseen. None without repeats."""
    by_run = {r.run_id: r for r in document.results}
    repeated = [(g, c) for g in document.comparison.groups for c in g.columns if len(c.run_ids) > 1]
    if not repeated:
        return None
    table = _table("repeats: each run, then the mean ± half its 95 % CI (Student t)")
    for column in ("workload", "library", "metric", "repeats", "mean", "± 95 % CI", "note"):
        table.add_column(column, justify="right" if column in ("mean", "± 95 % CI") else "left",
                         no_wrap=column != "note", overflow="fold")
    for group, column in repeated:
        for metric in map(BY_KEY.get, REPEATED):
            values = [v for i in column.run_ids if (v := by_run[i].metrics.get(metric.key)) is not None]
            found = estimate(values)
            if found is None:
                continue
            half = None if found.low is None else (found.high - found.low) / 2
            digits = metric.digits
            table.add_row(group.title, column.label, metric.heading, ", ".join(fmt(v, digits) for v in values),
                          fmt(found.mean, digits),
                          f"{fmt(half, digits)} ({fmt(found.half_width_pct, 1)} %)" if half is not None else "",
                          first_repeat_note(values) or "")
    return table


def knee_text(sweep: Sweep) -> str:
    served = BY_KEY["request_throughput_rps"].text(sweep.capacity_rps)
    where = f"{sweep.label} on {sweep.dataset}"
    unit = REQUEST_RATE.unit
    if not sweep.saturated:
        top = rate_label(sweep.points[-1].rate) if sweep.points else "?"
        return f"{where}: keeps up with every rate up to {top} {unit} (served {served} at most)"
    at = next(p for p in sweep.points if p.rate == sweep.knee_rate)
    if at.rate is None:
        return f"{where}: keeps up with every rate it was sent at; all at once, it serves {served}"
    sent, came_back = BY_KEY["offered_rps"], BY_KEY["completion_rps"]
    return (f"{where}: saturates by {rate_label(at.rate)} {unit} (sent at {fmt(at.offered_rps, sent.digits)}, "
            f"came back at {came_back.text(at.completion_rps)}); serves {served} at most")


def legend(comparison: Comparison) -> str:
    """What the marks of the tables mean, the noise assumption included."""
    columns = [c for g in comparison.groups for c in g.columns]
    repeated = any(len(c.run_ids) > 1 for c in columns)
    text = f"★ best of its row · (×) ratio to {comparison.baseline} · ≈ within noise ("
    text += (f"Welch's t-test over repeats; single runs: ±{ASSUMED_NOISE_PCT:.0f} % assumed)" if repeated else
             f"single runs: ±{ASSUMED_NOISE_PCT:.0f} % run-to-run noise assumed; --repeat N measures it)")
    if repeated:
        text += " · ± half the 95 % CI of the mean of ×N repeats (Student t)"
    if any(c.warnings for c in columns):
        text += " · ⚠ the run has validity warnings: `tuibench runs show ID`"
    return text


def print_document(console, document: ComparisonDocument, profiles: Sequence[ModuleProfile] = (),
                   sections: Sequence[str] = ("steps", "groups", "repeats", "sweeps", "capacity", "profiles",
                                              "explain")) -> None:
    """The comparison as `tuibench compare` prints it: the plan's steps, a table per workload, the sweeps with
    their knees, the module shares of the profiled libraries, and coarse to fine: the gap between two libraries
    by module category, and each library's time per token against its decode step."""
    comparison = document.comparison
    if "steps" in sections:
        console.print()
        console.print(steps_table(document))
    if "groups" in sections:
        for group in comparison.groups:
            console.print()
            console.print(group_table(group))
        if comparison.groups:
            console.print(f"[dim]{legend(comparison)}[/]", highlight=False)
    if "repeats" in sections and (repeats := repeats_table(document)) is not None:
        console.print()
        console.print(repeats)
    if "sweeps" in sections and comparison.sweeps:
        console.print()
        console.print(sweep_table(comparison.sweeps))
        for sweep in comparison.sweeps:
            console.print(f"[dim]· {knee_text(sweep)}[/]", highlight=False)
    if "capacity" in sections and document.capacities:
        for capacity in document.capacities:
            if capacity.probes:
                console.print()
                console.print(probes_table(capacity))
        console.print()
        for line in document.verdicts:
            console.print(f"[bold]{line}[/]", highlight=False)
    if "profiles" in sections and profiles:
        console.print()
        console.print(shares_table(profiles))
    if "explain" in sections and document.explanation is not None:
        for table in explanation_tables(document.explanation):
            console.print()
            console.print(table)


def write_files(document: ComparisonDocument, json_path: Path | None = None, csv_path: Path | None = None,
                markdown_path: Path | None = None, figures_dir: Path | None = None) -> list[Path]:
    """The exports asked for, and the figures into a folder; returns every file written."""
    written = []
    for path, data in ((json_path, lambda: to_json(document)), (csv_path, lambda: to_csv(document).encode()),
                       (markdown_path, lambda: to_markdown(document).encode())):
        if path is not None:
            path.write_bytes(data())
            written.append(path)
    if figures_dir is not None:
        written += write_figures(document, figures_dir)
    return written


# -- files -------------------------------------------------------------------------------------------------


def to_json(document: ComparisonDocument) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document)) + b"\n"


def to_csv(document: ComparisonDocument) -> str:
    """Long form, one value a line: what a spreadsheet or pandas pivots as it likes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dataset", "scenario", "rate", "metric", "unit", "library", "model", "run_id", "status", "value",
                     "ratio_to_baseline", "best", "n", "ci_low", "ci_high", "vs_baseline", "warnings"])
    for group in document.comparison.groups:
        for row in group.rows:
            for index, (column, cell) in enumerate(zip(group.columns, row.cells, strict=True)):
                writer.writerow([group.dataset, group.scenario, "" if group.scenario != "serving" else rate_label(group.rate),
                                 row.key, row.unit, column.library, column.model, column.run_id, column.status,
                                 "" if cell.value is None else cell.value, "" if cell.ratio is None else cell.ratio,
                                 int(row.best == index), cell.n, "" if cell.low is None else cell.low,
                                 "" if cell.high is None else cell.high, cell.verdict or "", column.warnings])
    return out.getvalue()


def to_markdown(document: ComparisonDocument) -> str:
    lines = []
    plan = document.plan
    if plan:
        lines += [f"# plan {plan.id}: {plan.label} ({plan.status})", ""]
    lines += [legend(document.comparison) + ". Best of each row in **bold**.", ""]
    for group in document.comparison.groups:
        lines += [f"## {group.title}", ""]
        headers = ["metric", *(column_header(group, i).replace("\n", " ") for i in range(len(group.columns)))]
        lines += ["| " + " | ".join(headers) + " |", "|" + "---|" + "---:|" * len(group.columns)]
        for row_index, row in enumerate(group.rows):
            cells = []
            for column in range(len(group.columns)):
                text = cell_text(group, row_index, column, markup=False)
                cells.append(f"**{text}**" if row.best == column else text)
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
        lines.append("")
    if document.comparison.sweeps:
        lines += ["## serving sweeps", ""] + [f"- {knee_text(s)}" for s in document.comparison.sweeps] + [""]
    warned = [r for r in document.results if r.warnings]
    if warned:
        lines += ["## validity warnings", ""]
        lines += [f"- run {r.run_id} ({r.library}, {r.dataset} {r.scenario}): {w.message}" for r in warned
                  for w in r.warnings] + [""]
    skipped = [s for s in document.steps if s.status in ("skipped", "failed", "not run")]
    if skipped:
        lines += ["## steps that did not finish", ""]
        lines += [f"- step {s.step}, {s.library} {s.scenario}: {s.status}" + (f" ({s.reason})" if s.reason else "")
                  for s in skipped] + [""]
    return "\n".join(lines)


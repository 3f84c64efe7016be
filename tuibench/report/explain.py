"""Coarse to fine, as tables and a text waterfall: B's step against A's by category, and each library's TPOT
against its own decode step (analysis/attribution.py computes both)."""

from rich.table import Table
from rich.text import Text

from tuibench.analysis.attribution import Attribution, CategoryRow, CoarseFine, Explanation
from tuibench.analysis.theory import LABELS as THEORY_LABELS
from tuibench.core.catalogue import LATENCY_OF
from tuibench.core.units import NA, fmt

# A coarse run's time per output token: the mean of its TPOT (analysis/attribution.py's coarse_fine).
TPOT = LATENCY_OF["tpot_ms"]


def _table(title: str) -> Table:
    return Table(title=title, box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0), title_justify="left")


def attribution_title(attribution: Attribution) -> str:
    shape = (f"{attribution.phase} · batch {attribution.batch}, input {attribution.input_len} · {attribution.dtype}")
    step = "step wall" if attribution.basis == "wall" else "forward"
    return (f"{attribution.b} against {attribution.a} · {shape}: {step} {attribution.a_step_ms:,.2f} → "
            f"{attribution.b_step_ms:,.2f} ms ({attribution.gap_ms:+,.2f} ms)")


def reading(row: CategoryRow) -> str:
    """What the row says: the same work (by the theory's FLOPs and bytes) done slower or faster, or more, less or
    other work."""
    if row.work is None:
        return ""
    if row.work != "same":
        return f"{row.work} work"
    if abs(row.gap_ms) < 0.01:
        return "same"
    return "same work, slower" if row.gap_ms > 0 else "same work, faster"


def attribution_table(attribution: Attribution) -> Table:
    """A row per category and one for the rest of the step: A's and B's ms per step, the gap and its share, and
    the theory's roofline time for each side's work. The rows sum to the steps and the gap."""
    table = _table(attribution_title(attribution))
    for column in ("category", "A ms", "B ms", "B−A ms", "of gap", "roofline A", "roofline B", "reading"):
        table.add_column(column, justify="left" if column in ("category", "reading") else "right", no_wrap=True)
    for row in attribution.rows:
        table.add_row(row.label, fmt(row.a_ms, 2), fmt(row.b_ms, 2), f"{row.gap_ms:+,.2f}",
                      f"{100 * row.share:+.0f}%" if row.share is not None else NA,
                      fmt(row.a_roofline_ms, 2), fmt(row.b_roofline_ms, 2), reading(row))
        for part in row.parts:  # inside the category's figures, not beside them
            table.add_row(f"  of which {THEORY_LABELS.get(part.key, part.key)}",
                          fmt(part.a_ms, 2) if part.a_ms is not None else "(fused)",
                          fmt(part.b_ms, 2) if part.b_ms is not None else "(fused)", "", "", "", "", "", style="dim")
    table.add_row("step", fmt(attribution.a_step_ms, 2), fmt(attribution.b_step_ms, 2),
                  f"{attribution.gap_ms:+,.2f}", "100%" if attribution.gap_ms else NA, "", "", "", style="bold")
    table.caption = f"A: {attribution.a} · B: {attribution.b} · roofline: the theory's time for the work on the device"
    table.caption_justify = "left"
    return table


def coarse_fine_table(items: list[CoarseFine], unmatched: list[str]) -> Table:
    """Each coarse run's time per output token against its library's decode step at that batch and context."""
    table = _table("coarse to fine: time per output token against the profiled decode step")
    for column in ("library", "run", "scenario", "batch", "context", TPOT.heading, "profile", "its context",
                   "forward ms", "outside it ms", f"of {TPOT.short}"):
        table.add_column(column, justify="left" if column in ("library", "scenario") else "right", no_wrap=True)
    for item in items:
        table.add_row(item.library, str(item.run_id), item.scenario, str(item.batch), f"{item.context:,.0f}",
                      fmt(item.tpot_ms, 2), str(item.profile_run_id), f"{item.profile_context:,.0f}",
                      fmt(item.forward_ms, 2), f"{item.overhead_ms:+,.2f}",
                      f"{100 * item.overhead_ms / item.tpot_ms:.0f}%" if item.tpot_ms else NA)
    lines = [f"outside it: {TPOT.short} less the model's forward: batching, scheduling, sampling, detokenisation "
             "(and a server's HTTP)"]
    lines += [f"no match: {reason}" for reason in unmatched]
    table.caption = "\n".join(lines)
    table.caption_justify = "left"
    return table


def explanation_tables(explanation: Explanation) -> list[Table]:
    tables = [attribution_table(a) for a in explanation.attributions]
    if explanation.coarse_fine or explanation.unmatched:
        tables.append(coarse_fine_table(explanation.coarse_fine, explanation.unmatched))
    return tables


def steps_of(attribution: Attribution, max_rows: int | None = None) -> list[tuple[str, float]]:
    """(label, change in ms) from A's step to B's: the categories that moved (by 0.005 ms or more), the largest
    first past `max_rows`, the others folded into one row so the changes still sum to the gap."""
    moved = [(row.label, row.gap_ms) for row in attribution.rows if abs(row.gap_ms) >= 0.005]
    if max_rows is not None and len(moved) > max_rows:
        kept = {label for label, _ in sorted(moved, key=lambda item: -abs(item[1]))[:max_rows - 1]}
        rest = [gap for label, gap in moved if label not in kept]
        moved = [item for item in moved if item[0] in kept] + [(f"{len(rest)} others", sum(rest))]
    moved.append(("", attribution.gap_ms - sum(gap for _, gap in moved)))  # what rows under 0.005 ms add up to
    return [(label, gap) for label, gap in moved if label or abs(gap) >= 0.005]


def waterfall(attribution: Attribution, width: int = 24, max_rows: int | None = None) -> list[tuple[str, str, Text]]:
    """(label, ms, bar) per line, from A's step to B's through each category's change: each bar starts where the
    running total stood and runs to where the change takes it (red: slower, green: faster), on one scale."""
    changes = steps_of(attribution, max_rows)
    points = [attribution.a_step_ms]
    for _, gap in changes:
        points.append(points[-1] + gap)
    high = max(points)
    scale = (width - 1) / high if high > 0 else 0.0

    def bar(start: float, end: float, style: str) -> Text:
        left, right = sorted((round(start * scale), round(end * scale)))
        return Text(" " * left + "█" * max(1, right - left), style=style)

    lines = [(attribution.a, f"{attribution.a_step_ms:,.2f}", bar(0.0, attribution.a_step_ms, "bold"))]
    for (label, gap), start in zip(changes, points, strict=False):
        lines.append((label or "rows under 0.005 ms", f"{gap:+,.2f}", bar(start, start + gap,
                                                                         "red" if gap > 0 else "green")))
    lines.append((attribution.b, f"{attribution.b_step_ms:,.2f}", bar(0.0, attribution.b_step_ms, "bold")))
    return lines

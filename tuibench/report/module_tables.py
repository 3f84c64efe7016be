"""Tables of the fine-grained analysis: a measured module tree, module shares across runs, and theory."""

from collections.abc import Sequence

from rich.table import Table

from tuibench.analysis.attribution import category_times
from tuibench.analysis.categories import LABELS as CATEGORY_LABELS
from tuibench.analysis.paper import FAMILY, paper_form, paper_intensity
from tuibench.analysis.theory import (
    LABELS, LAYER_MODULES, LINEAR_MODULES, MODEL_MODULES, Breakdown, ModelShape, Workload, breakdown, total,
)
from tuibench.core.module_profile import ModuleNode, ModuleProfile
from tuibench.core.roofline import Cost, Roofline
from tuibench.core.units import NA, fmt, fmt_si

BOUND_STYLE = {"memory": "yellow", "compute": "cyan"}
BOUND_SHORT = {"memory": "mem", "compute": "comp"}
NODE_COLUMNS = ("module", "ms", "%", "FLOPs", "bytes", "FLOP/B", "bound", "%roof")


def _intensity(cost: Cost | None) -> str:
    return fmt(cost.intensity, 1) if cost and cost.intensity is not None else NA


def _bound(bound: str | None) -> str:
    return f"[{BOUND_STYLE[bound]}]{BOUND_SHORT[bound]}[/]" if bound else NA


def tree_rows(root: ModuleNode, per_layer: bool = False, max_depth: int | None = None) -> list[tuple[int, ModuleNode]]:
    """(depth, node) depth first: the tree with layers folded, or each layer below its folded node too."""
    rows: list[tuple[int, ModuleNode]] = []

    def visit(node: ModuleNode, depth: int) -> None:
        rows.append((depth, node))
        if max_depth is not None and depth >= max_depth:
            return
        for child in (*node.children, *(node.layers if per_layer else ())):
            visit(child, depth + 1)

    visit(root, 0)
    return rows


def node_cells(profile: ModuleProfile, node: ModuleNode) -> tuple[str | None, list[str]]:
    """A node's bound (None where theory has none) and its cells after the name, in NODE_COLUMNS order;
    the bound cell is left to the caller, which colours it."""
    verdict = profile.verdict(node)
    cost = node.cost
    step_ms = profile.step_ms
    return verdict.bound if verdict else None, [
        fmt(node.time_ms, 2),
        fmt(100.0 * node.time_ms / step_ms if step_ms else None, 1),
        fmt_si(cost.flops) if cost else NA,
        fmt_si(cost.bytes_moved, "B") if cost else NA,
        _intensity(cost),
        fmt(verdict.roofline_pct, 0) if verdict and verdict.roofline_pct is not None else NA,
    ]


def profile_title(profile: ModuleProfile) -> str:
    context = f"input {profile.input_len}" if profile.phase == "prefill" else f"context ≈{profile.context:g}"
    return (f"{profile.library} {profile.phase} · batch {profile.batch}, {context} · {profile.dtype}, "
            f"attention {profile.attn} · {profile.step_ms:,.1f} ms/step, {profile.coverage:.0%} in named modules"
            f"\n{timing_line(profile)}")


def timing_line(profile: ModuleProfile) -> str:
    """How the step's time was measured and where it went: the timer, what it cost, the books of the step."""
    # n: the timed steps (as many bare ones): a prefill of one pass moves by ±5 % on a shared host, either way.
    cost = f", on/off {profile.timer_on_off:.3f}× (n={profile.steps})" if profile.timer_on_off is not None \
        else ", cost not measured"
    books = profile.books
    if books is None:
        return f"timer {profile.timer}{cost} · step wall not measured"
    # Outside the forward: sampling, logits processing, the scheduler, Python between the model's calls.
    return (f"timer {profile.timer}{cost} · wall {books.wall_ms:,.2f} ms = leaves {books.leaves_ms:,.2f} "
            f"+ inline {books.inline_ms:,.2f} + outside the forward {books.outside_ms:,.2f}")


def profile_table(profile: ModuleProfile, max_depth: int = 5, per_layer: bool = False) -> Table:
    """The tree as indented rows: time, share of the step, theory and how close it came to the roofline."""
    table = Table(title=profile_title(profile), box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0),
                  title_justify="left")
    for column in NODE_COLUMNS:
        table.add_column(column, justify="left" if column == "module" else "right", no_wrap=True,
                         overflow="ellipsis", max_width=30 if column == "module" else None)
    for depth, node in tree_rows(profile.root, per_layer, max_depth):
        bound, cells = node_cells(profile, node)
        table.add_row("  " * depth + node.name, *cells[:-1], _bound(bound), cells[-1])
    return table


def leaf_shares(profile: ModuleProfile) -> dict[str, float]:
    """Share of the forward per category (analysis/categories.py), from the leaves; categories with none left out."""
    step_ms = profile.step_ms
    return {label: 100.0 * ms / step_ms for label, ms in category_times(profile, "forward").items()
            if ms and step_ms}


def shares_table(profiles: Sequence[ModuleProfile], title: str = "share of step time (%)") -> Table:
    """Modules down, (library, phase, length) across: the paper's module breakdown figure as a table."""
    table = Table(title=title, box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0),
                  title_justify="left")
    table.add_column("module", no_wrap=True)
    columns = []
    for profile in profiles:
        short = {"transformers": "hf", "vllm": "vllm"}.get(profile.library, profile.library[:4])
        table.add_column(f"{short} {profile.phase[:3]}\n{profile.input_len}", justify="right", no_wrap=True)
        columns.append(leaf_shares(profile))
    for label in CATEGORY_LABELS:
        values = [shares.get(label) for shares in columns]
        if any(v is not None for v in values):
            table.add_row(label, *(fmt(v, 1) for v in values))
    table.add_row("step (ms)", *(fmt(p.step_ms, 1) for p in profiles), style="bold")
    return table


def theory_table(costs: Breakdown, roofline: Roofline | None, per_layer: bool = False) -> Table:
    """Per-module theory of one phase: every layer module summed over the layers (or, `per_layer`, for one layer:
    the same intensity and bound, 1/L of the work and time), then the rest."""
    work, shape = costs.work, costs.shape
    seq = work.query_tokens if work.phase == "prefill" else work.context
    title = (f"{work.phase}: batch {work.batch}, {'input' if work.phase == 'prefill' else 'context'} {seq:g}, "
             f"{work.dtype}, attention {work.attn} · "
             + (f"one layer of {shape.layers}" if per_layer else f"{shape.layers} layers"))
    table = Table(title=title, box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0),
                  title_justify="left")
    for column in ("module", "FLOPs", "bytes", "FLOP/B", "O() form", "O() FLOP/B", "bound", "roofline"):
        table.add_column(column, justify="left" if column in ("module", "O() form") else "right", no_wrap=True)
    rows = [k for k in LAYER_MODULES if k not in ("attn_qk", "attn_softmax", "attn_pv")]
    rows.insert(rows.index("kv_write") + 1, "attn_core")
    order = ["embed", *rows, "final_norm", "lm_head"]
    for key in order:
        in_layers = key not in MODEL_MODULES
        cost = costs.module(key) * (1 / shape.layers if per_layer and in_layers else 1)
        # The LM head sees only the last position of each sequence: s = 1 in its O() form too.
        paper = paper_intensity(key, work.phase, work.batch, 1 if key == "lm_head" else int(seq), shape.hidden,
                                shape.heads)
        table.add_row(
            LABELS[key] + ("" if not in_layers else " (1 layer)" if per_layer else " (×L)"),
            fmt_si(cost.flops), fmt_si(cost.bytes_moved, "B"), _intensity(cost),
            FAMILY.get(key, NA), fmt(paper, 1),
            _bound(roofline.bound(cost)) if roofline else NA,
            _time(roofline.time_s(cost)) if roofline else NA,
        )
    whole = costs.whole_model
    table.add_row("whole model", fmt_si(whole.flops), fmt_si(whole.bytes_moved, "B"), _intensity(whole), "", "",
                  _bound(roofline.bound(whole)) if roofline else NA, _time(roofline.time_s(whole)) if roofline else NA,
                  style="bold")
    return table


SWEEP_BATCHES = (1, 8, 32, 128, 512)


def intensity_sweep_table(shape: ModelShape, seq: int, dtype: str, attn: str, roofline: Roofline | None,
                          batch: int | None = None) -> Table:
    """The paper's point in numbers: in decode, the linear layers' intensity grows with the batch while
    attention's stays near 1 (each sequence reads its own KV cache), so attention stays memory-bound. The batch
    asked for (`batch`) is among the rows, in bold."""
    table = Table(title=f"decode intensity (FLOP/B) against batch, context {seq}", box=None, pad_edge=False,
                  header_style="bold", padding=(0, 1, 0, 0), title_justify="left")
    for column in ("batch", "linear", "O() linear", "attention", "O() attention", "linear bound", "attention bound"):
        table.add_column(column, justify="right", no_wrap=True)
    for size in sorted({*SWEEP_BATCHES, *([batch] if batch else [])}):
        costs = breakdown(shape, Workload.decode(size, seq, dtype, attn))
        linear = total(costs.module(k) for k in LINEAR_MODULES)
        attention = costs.module("attn_core")
        table.add_row(
            str(size), _intensity(linear),
            fmt(paper_intensity("q_proj", "decode", size, seq, shape.hidden, shape.heads), 1),
            _intensity(attention),
            fmt(paper_intensity("attn_core", "decode", size, seq, shape.hidden, shape.heads), 1),
            _bound(roofline.bound(linear)) if roofline else NA,
            _bound(roofline.bound(attention)) if roofline else NA,
            style="bold" if size == batch else None,
        )
    return table


def paper_forms_legend(phase: str) -> str:
    """The paper's O() forms of one phase, one family per line."""
    lines = []
    for family in ("linear", "attention", "elementwise"):
        form = paper_form(next(k for k, f in FAMILY.items() if f == family), phase)
        lines.append(f"  {family}: FLOPs {form.flops}, bytes {form.memory}")
    return f"paper's O() forms, {phase} (b batch, s length, h hidden, n heads):\n" + "\n".join(lines)


def _time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"

"""The catalogue names every figure and status once: each entry reads a real field, none is missing or twice, and
no module of report/ or ui/ names a figure by hand."""

import ast
import re
import typing
from pathlib import Path

import tuibench
from tuibench.core.catalogue import BY_KEY, LATENCIES, METRICS, REQUEST_RATE, STATUS_STYLE, SWEEP_KEYS
from tuibench.core.metrics import RunMetrics
from tuibench.core.plan import PlanStatus, StepStatus
from tuibench.core.reducer import Status
from tuibench.core.side_by_side import SweepPoint


def test_every_status_a_run_step_or_plan_can_have_has_a_style():
    statuses = {*typing.get_args(Status), *typing.get_args(StepStatus), *typing.get_args(PlanStatus)}
    assert statuses - set(STATUS_STYLE) == set()  # partial among them: yellow, as it was not in History before
    assert STATUS_STYLE["partial"] == "yellow"


def test_every_latency_and_figure_reads_a_field_that_exists():
    assert {latency.field for latency in LATENCIES} <= set(RunMetrics.__struct_fields__)
    assert len(BY_KEY) == len(METRICS)  # no key twice
    assert set(SWEEP_KEYS) <= set(SweepPoint.__struct_fields__)
    assert [m.digits for m in (BY_KEY["failed"], BY_KEY["request_throughput_rps"], BY_KEY["ttft_p50_ms"])] == [0, 2, 1]


def test_every_figure_of_a_run_is_in_the_catalogue_and_reads_from_run_metrics():
    """A number RunMetrics holds is shown under the catalogue's name, so each has an entry (read from the field of
    its key); a new field without one fails here. `trimmed` is a setting echoed back (how many requests were left
    out at each end), not a measure."""
    numbers = {name for name, kind in typing.get_type_hints(RunMetrics).items()
               if set(typing.get_args(kind) or (kind,)) - {type(None)} <= {int, float}}
    assert numbers - set(BY_KEY) == {"trimmed"}
    metrics = RunMetrics(completed=3, failed=1, duration_s=2.0, input_tokens=30, output_tokens=12,
                         request_throughput_rps=1.5, output_throughput_tok_s=6.0, total_throughput_tok_s=21.0,
                         ttft_ms=None, tpot_ms=None, itl_ms=None, e2el_ms=None, prefill_s=0.5, decode_s=1.5,
                         goodput_rps=1.0, energy_per_output_token_j=0.25)
    for name in numbers - {"trimmed"}:
        assert BY_KEY[name].read(metrics) == getattr(metrics, name), name
    for metric in METRICS:
        metric.read(metrics)  # every reader runs on a run without latencies: N/A, not an error
        assert metric.digits >= 0
        assert metric.higher_is_better is not None or not metric.compared, metric.key  # a comparison's ★ needs it
    assert len({m.label for m in METRICS}) == len(METRICS)
    assert len({m.column for m in METRICS}) == len(METRICS)


def test_a_value_shows_its_unit_once():
    assert BY_KEY["output_throughput_tok_s"].cell(12.34) == "12.3"  # the label says tok/s
    assert BY_KEY["duration_s"].cell(2.0) == "2.00 s"
    assert BY_KEY["ttft_p50_ms"].heading == "TTFT p50 ms" and BY_KEY["ttft_p50_ms"].axis == "TTFT p50 (ms)"
    assert BY_KEY["output_throughput_tok_s"].named(12.34) == "12.3 out tok/s"
    assert BY_KEY["failed"].cell(None) == "N/A"


# -- no metric named by hand in report/ or ui/ ------------------------------------------------------------------

PACKAGE = Path(tuibench.__file__).resolve().parent
# What names a figure: its acronyms (as written: a lower-case "ttft" is a key or a user's objective), the words for
# the rates, and the units of rates and energy. A name typed with one of these would drift from the catalogue's.
PHRASES = re.compile(r"(?<![\w/])(?:TTFT|TPOT|ITL|E2EL?|tok/s|req/s|J/tok)(?!\w)|(?i:\b(?:throughput|goodput)\b)")
# Arguments that name a widget or a task, not what a person reads: `Chart(..., id="throughput")`.
IDENTIFIER_KEYWORDS = {"id", "classes", "key", "group", "name"}


def catalogue_names() -> set[str]:
    """Every name the catalogue gives a figure, as a table could spell it (with its unit, or the unit in
    parentheses), lower-cased; less the status words ("failed" is also a run's status) and bare words a table uses
    for other things ("lag", "queue", "rate")."""
    names = set()
    for metric in METRICS:
        names |= {metric.label, metric.column, metric.heading, metric.axis}
    for latency in LATENCIES:
        names |= {latency.label, latency.short, latency.heading, f"{latency.short} ({latency.unit})"}
    names |= {REQUEST_RATE.label, REQUEST_RATE.heading, REQUEST_RATE.axis}
    return {name.lower() for name in names} - set(STATUS_STYLE) - {"lag", "queue"}


def hand_typed(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string constant in `source` that names a figure: a metric phrase in it, or the whole
    of it (stripped) one of the catalogue's names. Docstrings are left out (they explain, they do not label), and
    so are widget ids and CSS selectors. An f-string's literal parts are constants too: f"{x} req/s" is caught."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        if isinstance(node, ast.keyword) and node.arg in IDENTIFIER_KEYWORDS:
            skipped |= {id(inner) for inner in ast.walk(node.value)}
    names = catalogue_names()
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skipped:
            continue
        text = node.value
        if text.startswith(("#", ".")) and " " not in text:  # a selector: "#throughput"
            continue
        if PHRASES.search(text) or text.strip(" :·\n").lower() in names:
            found.append((node.lineno, node.col_offset, text))
    return [(line, text) for line, _, text in sorted(found)]


# Constants the check flags that are not a figure's name, each with why. Keep it short: a name belongs in the
# catalogue.
ALLOWED: dict[tuple[str, str], str] = {}


def test_no_metric_is_named_by_hand_in_report_or_ui():
    """A figure's label, unit, direction and digits are written only in core/catalogue.py: every table, screen,
    figure and export in report/ and ui/ reads them from there. Tried by hand: `table.add_row("output throughput",
    ...)` in report/tables.py, `Chart("TTFT p50 vs req/s")` in ui/screens/compare.py, or `"E2E p50"` anywhere there
    fails this test, naming the file, the line and the text."""
    found = []
    for folder in ("report", "ui"):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            where = str(path.relative_to(PACKAGE.parent))
            found += [f"{where}:{line}: {text!r}" for line, text in hand_typed(path.read_text())
                      if (where, text) not in ALLOWED]
    assert found == [], "named by hand, not read from the catalogue:\n" + "\n".join(found)


def test_the_check_finds_names_typed_by_hand_and_passes_docstrings_and_ids():
    source = '''
def table(t, rate):
    """The TTFT and output throughput of a run (a docstring explains: not a label)."""
    t.add_row("output throughput", 1)
    t.add_row("E2E p50", 2)
    t.add_column(f"{rate:g} req/s")
    t.add_row("Cold start s", 3)
    t.add_row("failed", 4)
    yield Chart("x", id="throughput")
    query("#throughput")
'''
    assert [text for _, text in hand_typed(source)] == ["output throughput", "E2E p50", " req/s", "Cold start s"]
